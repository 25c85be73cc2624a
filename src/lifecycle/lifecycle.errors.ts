import { DomainError } from '../common/domain-error';

/**
 * This process has no room for another turn: its turns in flight and its queue are full, or the turn
 * waited in the queue past TURN_QUEUE_TIMEOUT_MS. 503 with `Retry-After`; retrying (on any replica) is safe,
 * since nothing of the turn ran.
 */
export class Overloaded extends DomainError {
  readonly code = 'Overloaded';
}
