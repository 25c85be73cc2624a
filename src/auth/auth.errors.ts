import { DomainError } from '../common/domain-error';

/** Missing, malformed, unknown, expired or revoked API key. Answered 401 with `WWW-Authenticate: Bearer`. */
export class Unauthorized extends DomainError {
  readonly code = 'Unauthorized';
}

/** The key is valid but may not do this (e.g. act on another tenant). */
export class Forbidden extends DomainError {
  readonly code = 'Forbidden';
}

/** The key lacks a scope the route needs; `missingScopes` names them. */
export class ScopeMissing extends DomainError {
  readonly code = 'ScopeMissing';
}

/** The key's model allow-list does not contain the requested model; `model` and `allowedModels` say so. */
export class ModelNotAllowed extends DomainError {
  readonly code = 'ModelNotAllowed';
}

/** No API key matches the given id, prefix or key (or it belongs to another tenant). */
export class ApiKeyNotFound extends DomainError {
  readonly code = 'ApiKeyNotFound';
}

/** No tenant has that id or name (or the caller may not see it). */
export class TenantNotFound extends DomainError {
  readonly code = 'TenantNotFound';
}

/** A tenant with that name exists already. */
export class TenantExists extends DomainError {
  readonly code = 'TenantExists';
}

/**
 * Over a requests- or tokens-per-minute limit of the key, the tenant or the client IP; `limit`
 * (`requests` | `tokens`), `holder` (`key` | `tenant` | `ip`) and `retryAfterSeconds` say which and when.
 */
export class RateLimitExceeded extends DomainError {
  readonly code = 'RateLimitExceeded';
  /** @param rateLimitHeaders the `x-ratelimit-*` headers to send with the 429 */
  constructor(
    message: string,
    extensions: Record<string, unknown> = {},
    readonly rateLimitHeaders: Record<string, string> = {},
  ) {
    super(message, extensions);
  }
}

/** A token or spend budget is spent; `budget`, `holder`, `limit`, `used` and `resetsAt` say which and when it resets. */
export class BudgetExceeded extends DomainError {
  readonly code = 'BudgetExceeded';
  /** @param rateLimitHeaders the `x-ratelimit-*` headers to send with the 429 */
  constructor(
    message: string,
    extensions: Record<string, unknown> = {},
    readonly rateLimitHeaders: Record<string, string> = {},
  ) {
    super(message, extensions);
  }
}

/** The rate limiter's Redis did not answer in time and RATE_LIMIT_FAIL_OPEN=false. */
export class RateLimiterUnavailable extends DomainError {
  readonly code = 'RateLimiterUnavailable';
}

/** Keys cannot be verified (the database failed); answered 503 with Retry-After, never 500. */
export class AuthUnavailable extends DomainError {
  readonly code = 'AuthUnavailable';
}
