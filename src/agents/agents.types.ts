import type { CacheControl, ResponseCacheReport } from '../caching/response-cache.types';
import type { TurnSink } from '../common/turn-events';
import type { MessageCacheReport } from '../context/cache-report';
import type { ConversationContextState } from '../context/context-policy';
import type { HistoryMessage } from '../context/prompt.types';
import type { ChatResult, ChatUsage, ProviderRoute } from '../inference/inference.types';
import type { RetrievedPassage as KnowledgePassage } from '../knowledge/retrieval.service';
import type { TurnTrace } from '../observability/turn-trace';

/**
 * Where a passage of an answer comes from: one chunk of one version of a knowledge document (the
 * location fields of the knowledge layer's RetrievedPassage, without its text and ranks). Sent as the
 * turn's `citations` event before the tokens and stored on the assistant message. `Pick`, not `Omit`, so a
 * field added to retrieval does not silently become part of the stored citation.
 */
export interface Citation
  extends Pick<
    KnowledgePassage,
    | 'chunkId'
    | 'documentId'
    | 'documentName'
    | 'knowledgeBaseId'
    | 'version'
    | 'headingPath'
    | 'start'
    | 'end'
  > {
  /** 1-based: the passage's number in the prompt (`[n]`), which the answer may cite. */
  index: number;
  /** Retrieval score, higher is better (reciprocal-rank-fusion score in hybrid mode; see RetrievalService). */
  score: number;
}

/** What the graph needs to answer one turn. */
export interface TurnInput {
  tenantId: string;
  conversationId: string;
  /** Agent pinned on the conversation, if any. */
  pinnedAgent: string | null;
  /** Knowledge bases the conversation is bound to (default: none). */
  knowledgeBaseIds?: readonly string[];
  /**
   * Complete earlier messages after the last compaction point (`context.droppedThroughSequence`), oldest
   * first, as they were sent (with their sequence and token count).
   */
  history: HistoryMessage[];
  /** Where the context-window policy left the conversation (null: never compacted). */
  context?: ConversationContextState | null;
  /** The user's display name (conversation metadata `userName`); only the `naive` prompt layout renders it. */
  userName?: string;
  userMessage: string;
  maxTokens?: number;
  temperature?: number;
  /** Response-cache control for this turn (mode, maxAgeSeconds); default: read and write the cache. */
  cache?: CacheControl;
  /** Server-derived engine cache salt for the tenant. */
  cacheSalt: string;
  /** Tracing handle for this turn (no-op when tracing is off). */
  trace?: TurnTrace;
}

/** The routing decision for a turn (stored on the assistant message as `route`). */
export interface RouteDecision {
  agent: string;
  /**
   * Confidence (0..1): 1 for a pinned agent; for `embedding` the blended cosine similarity of the
   * message to the agent's examples; for `llm` 1 when the engine named a known agent, else 0.
   */
  score: number;
  /** `pinned`: the conversation's agent. `default`: no classifier ran (none routable, or it failed). */
  classifier: 'pinned' | 'default' | 'embedding' | 'llm';
  /** True when the fallback agent answers because the best score was below `floor` (or no classifier ran). */
  fallback?: boolean;
  /** The confidence floor the best score was compared with (AGENT_ROUTING_FLOOR). */
  floor?: number;
  /** The classifier's best agents, best first (at most 3), when a classifier ran. */
  candidates?: { agent: string; score: number }[];
  /** Why the decision is what it is, when it is not the classifier's pick (machine-readable). */
  reason?: 'below-floor' | 'no-routable-agent' | 'classifier-unavailable' | 'pinned-agent-unknown';
  /** After the engine answered: the catalogue deployment that answered and every attempt (fallbacks, skips). */
  provider?: ProviderRoute;
}

/** A turn's answer with everything the message stores. */
export interface TurnOutput extends Omit<ChatResult, 'timings'> {
  timings: ChatResult['timings'];
  route: RouteDecision;
  templateVersion: string;
  cache: MessageCacheReport;
  /** The passages the answer was given, when the agent retrieved any (stored on the assistant message). */
  citations?: Citation[];
  /**
   * On a response-cache hit: the usage of the engine call that produced the replayed answer (what the
   * miss it replaced cost, in tokens), for the usage ledger. Absent on a miss.
   */
  replacedUsage?: ChatUsage;
  /** The window state after this turn, to persist on the conversation (absent: unchanged). */
  context?: ConversationContextState;
  /** The user message as sent (date and volatile context included), to persist so later turns repeat it. */
  userPromptContent?: string;
  /** Token counts measured this turn, to persist as `Message.tokenCount`. */
  tokenCounts?: {
    user?: number;
    assistant?: number;
    /** History messages that had no count (sequence -> tokens). */
    history?: Record<number, number>;
  };
}

/** What the agent graph emits while a turn runs (see TurnEvent): the route, the cache report, tokens, usage. */
export interface AgentTurnPayloads {
  route: RouteDecision;
  citations: Citation[];
  cache: ResponseCacheReport;
  usage: ChatUsage;
  /** A turn's answer is text only (`token` events). */
  choice: never;
}

/** Where the graph sends a turn's events, with the turn's cancellation. */
export type AgentTurnSink = TurnSink<AgentTurnPayloads>;
