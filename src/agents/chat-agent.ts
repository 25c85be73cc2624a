import type { ComposedPrefix } from '../context/prompt-template';
import type { HistoryMessage, PromptSpec } from '../context/prompt.types';
import type { RouteDecision } from './agents.types';

/** A passage retrieved for this turn (knowledge retrieval fills these; none does yet). */
export interface RetrievedPassage {
  /** Where it comes from (document id, title or URL), cited in answers. */
  source: string;
  text: string;
  /** Retrieval score (0..1), when the retriever gives one. */
  score?: number;
}

/** The conversation a turn belongs to, as graph state. */
export interface TurnConversation {
  tenantId: string;
  conversationId: string;
  /** Agent pinned on the conversation, if any. */
  pinnedAgent: string | null;
}

/** What an agent sees of a turn when it builds its prompt. */
export interface AgentTurn {
  conversation: TurnConversation;
  /** Complete earlier messages, oldest first (the context-window policy decides which are sent). */
  messages: HistoryMessage[];
  userMessage: string;
  route: RouteDecision;
  /** Passages retrieved for this turn, when a retriever ran before the agent (none does in the graph yet). */
  retrieved?: RetrievedPassage[];
}

/**
 * Behaviour an `@Agent` class may implement. Everything is optional: an agent that only declares
 * options answers with the default prompt (`defaultAgentPrompt`).
 */
export interface ChatAgent {
  /**
   * Builds this turn's prompt. `prefix` is the shared global prefix followed by the agent's
   * instructions, with its template version; keep `stablePrefix` starting with `prefix.text` so
   * switching agents keeps the engine's cached global prefix.
   */
  prompt?(turn: AgentTurn, prefix: ComposedPrefix): PromptSpec | Promise<PromptSpec>;
}

/** An agent as the registry holds it. */
export interface RegisteredAgent {
  name: string;
  description: string;
  examples: readonly string[];
  /** Global prefix + the agent's instructions, and their version (`global@1+assistant@1`). */
  prefix: ComposedPrefix;
  /** The provider instance (the `@Agent` class). */
  instance: ChatAgent;
  /** Builds the agent's prompt for a turn (its own `prompt`, else the default). */
  buildPrompt(turn: AgentTurn): Promise<PromptSpec>;
}

/** Retrieved passages as the volatile tail of the user message: numbered, with their sources. */
export function renderPassages(passages: readonly RetrievedPassage[]): string | undefined {
  if (passages.length === 0) return undefined;
  const lines = passages.map((p, i) => `[${i + 1}] (${p.source}) ${p.text}`);
  return `Passages:\n${lines.join('\n')}`;
}

/**
 * The default prompt: the agent's stable prefix, the history as stored, and the user message with
 * any retrieved passages in the volatile tail (never in the prefix, so the cached prefix survives).
 */
export function defaultAgentPrompt(turn: AgentTurn, prefix: ComposedPrefix): PromptSpec {
  const volatileContext = renderPassages(turn.retrieved ?? []);
  return {
    stablePrefix: prefix.text,
    templateVersion: prefix.templateVersion,
    history: turn.messages,
    userMessage: turn.userMessage,
    ...(volatileContext ? { volatileContext } : {}),
  };
}
