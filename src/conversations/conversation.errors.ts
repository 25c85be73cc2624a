import { DomainError } from '../common/domain-error';

/** No conversation with that id for this tenant (another tenant's conversation is also "not found"). */
export class ConversationNotFound extends DomainError {
  readonly code = 'ConversationNotFound';
  constructor(id: string) {
    super(`Conversation ${id} does not exist.`, { conversationId: id });
  }
}

/** Another turn held the conversation for longer than the wait allowed. */
export class ConversationBusy extends DomainError {
  readonly code = 'ConversationBusy';
}
