import type { ChatMessage } from '../inference/inference.types';

/** A stored message of the conversation as the prompt sees it. */
export interface HistoryMessage extends ChatMessage {
  /** Position in the conversation (`Message.sequence`). */
  sequence: number;
  /** Tokens of `content` (`Message.tokenCount`); null or absent when not counted yet. */
  tokenCount?: number | null;
}

/**
 * What an agent wants sent, in the three zones that keep the engine's KV prefix warm:
 * a stable prefix (byte-identical across turns), an append-only history, a volatile tail.
 */
export interface PromptSpec {
  /** Global system prompt + agent instructions + tool list; versioned; no clock, no user name. */
  stablePrefix: string;
  /** Version of the templates that produced `stablePrefix` (recorded on each turn). */
  templateVersion: string;
  /**
   * Earlier messages, oldest first, exactly as they were sent (never rewritten). The context-window
   * policy decides which of them are sent.
   */
  history: HistoryMessage[];
  /** Rolling summary of dropped history, placed right after the stable prefix (set by the `summary` policy). */
  summary?: string;
  /**
   * Per-turn context: retrieved passages and the like. Goes with the new user message, never in the
   * prefix; once sent it is part of that message in the history (so the next turn reuses its KV).
   */
  volatileContext?: string;
  /** The new user message. */
  userMessage: string;
}

/** Per-turn facts the assembler may render (only in the volatile tail, except in the `naive` layout). */
export interface PromptRenderContext {
  /** The clock of this turn. */
  now: Date;
  /** The user's display name, if known (rendered only by the `naive` layout). */
  userName?: string;
}

/** The rendered prompt. */
export interface AssembledPrompt {
  messages: ChatMessage[];
  templateVersion: string;
  /** The new user message as sent (volatile tail included); stored so later turns repeat it byte for byte. */
  userContent: string;
}
