import { DomainError } from '../common/domain-error';

/** Missing, malformed, unknown or revoked API key. */
export class Unauthorized extends DomainError {
  readonly code = 'Unauthorized';
}

/** The key is valid but may not do this (e.g. an admin-only operation). */
export class Forbidden extends DomainError {
  readonly code = 'Forbidden';
}

/** No API key matches the given id, prefix or key. */
export class ApiKeyNotFound extends DomainError {
  readonly code = 'ApiKeyNotFound';
}
