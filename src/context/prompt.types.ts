import type { ChatMessage } from '../inference/inference.types';

/**
 * What an agent wants sent, in the three zones that keep the engine's KV prefix warm:
 * a stable prefix (byte-identical across turns), an append-only history, a volatile tail.
 */
export interface PromptSpec {
  /** Global system prompt + agent instructions + tool list; versioned; no clock, no user name. */
  stablePrefix: string;
  /** Version of the templates that produced `stablePrefix` (recorded on each turn). */
  templateVersion: string;
  /** Earlier messages, oldest first, exactly as stored (never rewritten). */
  history: ChatMessage[];
  /** Rolling summary of dropped history, placed right after the stable prefix (summary policy). */
  summary?: string;
  /** Per-turn context: date, retrieved passages. Goes with the new user message, never in the prefix. */
  volatileContext?: string;
  /** The new user message. */
  userMessage: string;
}

/** The rendered prompt. */
export interface AssembledPrompt {
  messages: ChatMessage[];
  templateVersion: string;
}
