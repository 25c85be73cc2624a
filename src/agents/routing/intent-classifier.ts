import type { RouteDecision } from '../agents.types';

/** What a classifier needs to know of an agent. */
export interface RoutableAgent {
  name: string;
  description: string;
  examples: readonly string[];
}

/** The classifier's scores for one message, best first (the classifier's own scale, 0..1). */
export interface IntentClassification {
  classifier: Exclude<RouteDecision['classifier'], 'pinned' | 'default'>;
  scores: { agent: string; score: number }[];
  /**
   * The message's embedding (EmbeddingsService), when the classifier computed one: the turn hands it to
   * the response cache's semantic lookup instead of embedding the message twice.
   */
  embedding?: number[];
}

/** Per-turn details a classifier may use (the LLM classifier sends them to the engine). */
export interface ClassifyContext {
  /** The tenant's engine cache salt. */
  cacheSalt?: string;
  /** Replica affinity key (the conversation id). */
  routingKey?: string;
}

/**
 * Scores agents for a user message. Implementations: `EmbeddingIntentClassifier` (default) and
 * `LlmIntentClassifier`; AGENT_CLASSIFIER picks the one bound to INTENT_CLASSIFIER.
 */
export interface IntentClassifier {
  /**
   * @param agents the candidates; pass the same array again to reuse work prepared for it (an index)
   * @param signal the turn's cancellation
   * @throws EmbeddingsUnavailable or Engine* errors when the service behind the classifier fails
   */
  classify(
    text: string,
    agents: readonly RoutableAgent[],
    context?: ClassifyContext,
    signal?: AbortSignal,
  ): Promise<IntentClassification>;
}

export const INTENT_CLASSIFIER = Symbol('INTENT_CLASSIFIER');
