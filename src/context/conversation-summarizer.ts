import type { ChatMessage, ChatUsage } from '../inference/inference.types';

/** A rolling summary to write: the previous one plus the messages that follow it. */
export interface SummarizeRequest {
  tenantId: string;
  conversationId: string;
  /** The summary being extended (null for the first one). */
  previousSummary: string | null;
  /** Messages after the previous summary, oldest first. */
  messages: readonly Pick<ChatMessage, 'role' | 'content'>[];
  /** Server-derived engine cache salt of the tenant (TenantSaltService.saltFor). */
  cacheSalt: string;
  /** Completion budget, tokens. */
  maxTokens: number;
  signal?: AbortSignal;
}

/** A written summary. */
export interface SummaryResult {
  /** The summary text, trimmed. */
  content: string;
  model: string;
  /** Version of the prompt that wrote it (`global@1+summarizer@1`). */
  templateVersion: string;
  usage: ChatUsage;
}

/**
 * Writes a conversation's rolling summary; the `summaries` job calls it. Context owns the contract
 * and the agents module binds it (to the summarizer agent), because modules depend downward: agents
 * import context, never the reverse.
 */
export interface ConversationSummarizer {
  /** @throws Engine* errors (EngineUnavailable, EngineTimeout, ...) and RequestAborted */
  summarize(request: SummarizeRequest): Promise<SummaryResult>;
}

/** Injection token of the ConversationSummarizer. */
export const CONVERSATION_SUMMARIZER = Symbol('CONVERSATION_SUMMARIZER');
