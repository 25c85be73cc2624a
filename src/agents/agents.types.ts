import type { CacheControl } from '../caching/response-cache.types';
import type { HistoryMessage } from '../context/prompt.types';
import type { ConversationContextState } from '../conversations/conversation.entity';
import type { MessageCacheReport } from '../conversations/message.entity';
import type { ChatResult } from '../inference/inference.types';
import type { TurnTrace } from '../observability/turn-trace';

/** What the graph needs to answer one turn. */
export interface TurnInput {
  tenantId: string;
  conversationId: string;
  /** Agent pinned on the conversation, if any. */
  pinnedAgent: string | null;
  /** Complete earlier messages, oldest first, as they were sent (with their sequence and token count). */
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
  onToken?: (delta: string) => void;
  signal?: AbortSignal;
  /** Tracing handle for this turn (no-op when tracing is off). */
  trace?: TurnTrace;
}

/** The routing decision for a turn. */
export interface RouteDecision {
  agent: string;
  /** Classifier confidence (0..1), 1 for a pinned agent. */
  score: number;
  classifier: 'pinned' | 'default' | 'embedding' | 'llm';
}

/** A turn's answer with everything the message stores. */
export interface TurnOutput extends Omit<ChatResult, 'timings'> {
  timings: ChatResult['timings'];
  route: RouteDecision;
  templateVersion: string;
  cache: MessageCacheReport;
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
