import type { MessageCacheReport } from '../conversations/message.entity';
import type { ChatMessage, ChatResult } from '../inference/inference.types';
import type { TurnTrace } from '../observability/turn-trace';

/** What the graph needs to answer one turn. */
export interface TurnInput {
  tenantId: string;
  conversationId: string;
  /** Agent pinned on the conversation, if any. */
  pinnedAgent: string | null;
  /** Complete earlier messages, oldest first. */
  history: ChatMessage[];
  userMessage: string;
  maxTokens?: number;
  temperature?: number;
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
}
