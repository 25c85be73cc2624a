import { DomainError } from '../common/domain-error';

/** The `Idempotency-Key` header is empty, too long, or not a printable ASCII string. */
export class IdempotencyKeyInvalid extends DomainError {
  readonly code = 'IdempotencyKeyInvalid';
  constructor(reason: string) {
    super(`Idempotency-Key ${reason}.`, { field: 'Idempotency-Key' });
  }
}

/** A request with this key is still running (409 with `Retry-After`): retry after it ends to get its result. */
export class IdempotencyKeyInUse extends DomainError {
  readonly code = 'IdempotencyKeyInUse';
  constructor() {
    super('A request with this Idempotency-Key is still being processed; retry shortly for its result.', {
      retryAfterSeconds: 1,
    });
  }
}

/** The key was used for a different request (another path or body): 422, as the IETF draft says. */
export class IdempotencyKeyReused extends DomainError {
  readonly code = 'IdempotencyKeyReused';
  constructor() {
    super('This Idempotency-Key was used for a different request (path or body); use a new key.', {
      field: 'Idempotency-Key',
    });
  }
}
