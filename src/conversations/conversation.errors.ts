import { DomainError } from '../common/domain-error';

/** No conversation with that id for this tenant (another tenant's conversation is also "not found"). */
export class ConversationNotFound extends DomainError {
  readonly code = 'ConversationNotFound';
  constructor(id: string) {
    super(`Conversation ${id} does not exist.`, { conversationId: id });
  }
}

/**
 * A turn stopped before its answer: the process is shutting down and the drain time ran out
 * (`reason: 'shutdown'`), or the turn ran past TURN_DEADLINE_MS (`reason: 'deadline'`). The user
 * message is stored `failed`; retrying is safe.
 */
export class TurnInterrupted extends DomainError {
  readonly code = 'TurnInterrupted';
  constructor(readonly reason: 'shutdown' | 'deadline') {
    super(
      reason === 'shutdown'
        ? 'The server shut down before the turn finished; the message is stored as failed. Try again.'
        : 'The turn ran past its deadline (TURN_DEADLINE_MS); the message is stored as failed. Try again.',
      { reason, retryAfterSeconds: 1 },
    );
  }
}

/** Another turn held the conversation for longer than the wait allowed. */
export class ConversationBusy extends DomainError {
  readonly code = 'ConversationBusy';
}
