import type { ErrorCode } from './problem-statuses';

/**
 * Base of every error a service throws on purpose. `code` is stable and machine-readable
 * (`ConversationNotFound`, `EngineUnavailable`); the HTTP layer maps it to a status
 * (problem-statuses.ts: a code must have a status there, or the typecheck fails). Services never throw
 * HTTP exceptions.
 */
export abstract class DomainError extends Error {
  abstract readonly code: ErrorCode;
  /** Extra machine-readable members for the problem body (never secrets, never message content). */
  readonly extensions: Record<string, unknown>;

  constructor(message: string, extensions: Record<string, unknown> = {}) {
    super(message);
    this.name = new.target.name;
    this.extensions = extensions;
  }
}

/** A request is well-formed but not acceptable (e.g. a client-supplied cache_salt). */
export class InvalidRequest extends DomainError {
  readonly code = 'InvalidRequest';
}

/** A message is longer than the configured limit. */
export class PayloadTooLarge extends DomainError {
  readonly code = 'PayloadTooLarge';
}
