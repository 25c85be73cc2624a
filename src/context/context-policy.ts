import type { ChatMessage } from '../inference/inference.types';
import { ContextLengthExceeded } from './context.errors';

/**
 * Where the context-window policy left the conversation: which messages are dropped from the
 * prompt and the rolling summary that stands in for them. Changed only at compaction, so the
 * prompt prefix stays byte-identical between compactions.
 */
export interface ConversationContextState {
  /** Messages with sequence <= this are not sent verbatim (0 = none dropped). */
  droppedThroughSequence: number;
  /** Rolling summary of the dropped messages, placed right after the stable prefix. */
  summary?: string;
  /** Sequence the summary covers up to. */
  summaryThroughSequence?: number;
  /** How many times the window was compacted. */
  compactions: number;
}

/** A history message as a context policy sees it. */
export interface WindowMessage {
  sequence: number;
  role: ChatMessage['role'];
  /** Tokens it costs in the prompt: its content plus the chat template's per-message overhead. */
  tokens: number;
}

/** What a policy decides on. Token figures include template overheads. */
export interface FitRequest {
  tenantId: string;
  conversationId: string;
  /** Where the previous turn left the window (a fresh state for a new conversation). */
  state: ConversationContextState;
  /** Complete messages after the last compaction point (`state.droppedThroughSequence`), oldest first. */
  history: readonly WindowMessage[];
  /** Tokens that are always sent: head system message, the new user message, the generation prompt. */
  fixedTokens: number;
  /** Prompt tokens allowed: the context length minus the tokens reserved for the answer. */
  budget: number;
  /** Tokens the rolling summary's system message would cost for `summary` (template overhead included). */
  summaryTokens(summary: string): Promise<number>;
}

/** A policy's decision: the new state; messages with sequence <= droppedThroughSequence are not sent. */
export interface FitResult {
  state: ConversationContextState;
  /** Rolling summary to place right after the stable prefix, if any. */
  summary?: string;
}

/**
 * Keeps a conversation inside the context window. The decision is persisted on the conversation
 * (`ConversationContextState`), so the window moves only when the policy says so: for `compact` and
 * `summary` that is a compaction, the only moment the prompt's prefix after the stable part changes.
 */
export interface ContextPolicy {
  readonly name: string;
  /** @throws ContextLengthExceeded when even the fixed part does not fit the budget */
  fit(request: FitRequest): Promise<FitResult>;
}

/** Injection token of the policy chosen by CONTEXT_POLICY. */
export const CONTEXT_POLICY = Symbol('CONTEXT_POLICY');

/** The state of a conversation no policy has touched yet. */
export function initialContextState(): ConversationContextState {
  return { droppedThroughSequence: 0, compactions: 0 };
}

/** Sum of the tokens of the messages after `droppedThrough`. */
export function visibleTokens(history: readonly WindowMessage[], droppedThrough: number): number {
  let sum = 0;
  for (const m of history) if (m.sequence > droppedThrough) sum += m.tokens;
  return sum;
}

/**
 * Turn boundaries after `droppedThrough`: the sequence of the last message before each user message
 * (dropping through one of them drops whole turns), plus the sequence of the last history message.
 */
export function turnBoundaries(history: readonly WindowMessage[], droppedThrough: number): number[] {
  const visible = history.filter((m) => m.sequence > droppedThrough);
  const out: number[] = [];
  for (let i = 1; i < visible.length; i++) {
    if (visible[i].role === 'user') out.push(visible[i - 1].sequence);
  }
  const last = visible.at(-1);
  if (last) out.push(last.sequence);
  return out;
}

/**
 * The smallest turn boundary after `droppedThrough` such that `extra` + the tokens after it fit `target`,
 * or null when even dropping every visible message does not get there.
 */
export function dropThroughFor(
  history: readonly WindowMessage[],
  droppedThrough: number,
  extra: number,
  target: number,
): number | null {
  for (const boundary of turnBoundaries(history, droppedThrough)) {
    if (extra + visibleTokens(history, boundary) <= target) return boundary;
  }
  return null;
}

/**
 * The error every policy raises when the always-sent part (system prompt, new message, generation
 * prompt) exceeds the budget on its own — no amount of dropped history could make it fit — or null.
 */
export function fixedPartTooLong({
  fixedTokens,
  budget,
}: Pick<FitRequest, 'fixedTokens' | 'budget'>): ContextLengthExceeded | null {
  return fixedTokens > budget
    ? new ContextLengthExceeded(
        `The message needs ${fixedTokens} prompt tokens with the system prompt; the window allows ${budget}.`,
        { promptTokens: fixedTokens, budget },
      )
    : null;
}
