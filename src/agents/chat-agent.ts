import type { ComposedPrefix } from '../context/prompt-template';
import type { HistoryMessage, PromptSpec } from '../context/prompt.types';
import type { Citation, RouteDecision } from './agents.types';

/** A passage retrieved for this turn, as the prompt shows it. */
export interface RetrievedPassage {
  /** Where it comes from (document name, version and heading path), shown in the prompt. */
  source: string;
  text: string;
  /** Retrieval score, when the retriever gives one. */
  score?: number;
  /** The citation of a knowledge passage (what the `citations` event carries). */
  citation?: Citation;
}

/** The conversation a turn belongs to, as graph state. */
export interface TurnConversation {
  tenantId: string;
  conversationId: string;
  /** Agent pinned on the conversation, if any. */
  pinnedAgent: string | null;
  /** Knowledge bases the conversation is bound to (empty: not bound; a retrieving agent searches all the tenant's). */
  knowledgeBaseIds: readonly string[];
}

/** What an agent's `retrieve` sees of a turn. */
export interface RetrievalTurn {
  conversation: TurnConversation;
  userMessage: string;
  route: RouteDecision;
  /** The user message's embedding when routing computed one (reuse it: one embedding per turn). */
  embedding?: readonly number[];
  /** The turn's cancellation. */
  signal: AbortSignal;
}

/** What `retrieve` found. */
export interface RetrievalOutcome {
  passages: RetrievedPassage[];
  /** The user message's embedding if `retrieve` computed it (the response cache's lookup reuses it). */
  embedding?: readonly number[];
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
   * Whether intent routing may pick this agent in this conversation (default: yes). Pinning ignores it.
   * The knowledge agent says no in conversations bound to no knowledge base, so general questions
   * there are not taken for questions about documents.
   */
  routableFor?(conversation: TurnConversation): boolean;
  /**
   * Retrieves passages for this turn before the prompt is built. The graph emits their citations
   * as the turn's `citations` event, hands them to `prompt` as `turn.retrieved`, stores them on the
   * assistant message, and files a cached answer under the documents they cite.
   */
  retrieve?(turn: RetrievalTurn): Promise<RetrievalOutcome>;
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
  // The passages' order and sources (document versions included) are part of the response-cache
  // scope through the volatile tail: a changed document never matches an answer that cited the old one.
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
