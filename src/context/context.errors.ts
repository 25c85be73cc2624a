import { DomainError } from '../common/domain-error';

/** The new message (with the stable prefix and the answer's reserve) does not fit the context window. Maps to 400. */
export class ContextLengthExceeded extends DomainError {
  readonly code = 'ContextLengthExceeded';
}
