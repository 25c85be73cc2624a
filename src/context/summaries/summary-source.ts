import type { ChatMessage } from '../../inference/inference.types';

/**
 * What the `summaries` job reads from a conversation. Context owns the contract and the conversations
 * module implements it (src/conversations/conversation-summary-source.ts), because modules depend
 * downward: conversations imports context, never the reverse.
 */
export interface SummarySource {
  /**
   * The complete messages of a tenant's conversation with `afterSequence < sequence <= throughSequence`,
   * oldest first, or null when the tenant has no such conversation (it was deleted meanwhile).
   */
  messagesToSummarize(
    tenantId: string,
    conversationId: string,
    afterSequence: number,
    throughSequence: number,
  ): Promise<Pick<ChatMessage, 'role' | 'content'>[] | null>;
}

/** Injection token of the SummarySource. */
export const SUMMARY_SOURCE = Symbol('SUMMARY_SOURCE');
