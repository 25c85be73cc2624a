import { Inject, Injectable, Logger } from '@nestjs/common';
import { AgentsConfig } from '../../config/agents.config';
import { AgentRegistry } from '../agent-registry.service';
import type { RouteDecision } from '../agents.types';
import {
  type ClassifyContext,
  INTENT_CLASSIFIER,
  type IntentClassifier,
  type RoutableAgent,
} from './intent-classifier';

/** Candidates kept on a decision (the stored `route.candidates`). */
const KEPT_CANDIDATES = 3;

/** What the router needs of a turn. */
export interface RouteRequest extends ClassifyContext {
  /** The conversation's pinned agent, if any. */
  pinnedAgent: string | null;
  userMessage: string;
  /**
   * Agents intent routing must not pick for this turn (their `ChatAgent.routableFor` said no, e.g. the
   * knowledge agent in a conversation bound to no knowledge base). Their scores are dropped before the
   * floor is applied; the index is unchanged. Pinning is unaffected.
   */
  ineligible?: readonly string[];
}

/** The router's answer for a turn. */
export interface RoutedTurn {
  route: RouteDecision;
  /** The user message's embedding when the classifier computed one (shared with the response cache). */
  embedding?: number[];
}

/**
 * The routing node's policy: the conversation's pinned agent when it has one; otherwise the
 * intent classifier's best agent when its score reaches AGENT_ROUTING_FLOOR; otherwise the fallback
 * agent (AGENT_FALLBACK). A classifier that fails (embeddings unreachable) never fails the turn:
 * the fallback answers and the decision says why.
 */
@Injectable()
export class AgentRouter {
  private readonly logger = new Logger(AgentRouter.name);

  constructor(
    private readonly registry: AgentRegistry,
    @Inject(INTENT_CLASSIFIER) private readonly classifier: IntentClassifier,
    private readonly config: AgentsConfig,
  ) {}

  /**
   * Decides which registered agent answers a turn.
   * @param signal the turn's cancellation (an aborted classifier call is rethrown, not routed to the fallback)
   */
  async route(request: RouteRequest, signal?: AbortSignal): Promise<RoutedTurn> {
    const { pinnedAgent, userMessage, ineligible = [], ...context } = request;
    if (pinnedAgent) {
      if (this.registry.get(pinnedAgent)) {
        return { route: { agent: pinnedAgent, score: 1, classifier: 'pinned' } };
      }
      // The agent was removed after the conversation was pinned to it: route as if unpinned.
      this.logger.warn(`pinned agent ${pinnedAgent} is not registered; routing by intent`);
      const routed = await this.classifyAndDecide(
        userMessage,
        this.registry.routable(),
        this.config.AGENT_FALLBACK,
        context,
        signal,
        ineligible,
      );
      return { ...routed, route: { ...routed.route, reason: routed.route.reason ?? 'pinned-agent-unknown' } };
    }
    return this.classifyAndDecide(
      userMessage,
      this.registry.routable(),
      this.config.AGENT_FALLBACK,
      context,
      signal,
      ineligible,
    );
  }

  /**
   * Picks among `agents` (the benchmark calls this with its own agents): the classifier's best if it
   * reaches the floor, else `fallback`.
   * @param agents candidates; pass the same array each time so the classifier reuses its index
   */
  async decide(
    text: string,
    agents: readonly RoutableAgent[],
    fallback: string,
    context: ClassifyContext = {},
    signal?: AbortSignal,
  ): Promise<RouteDecision> {
    return (await this.classifyAndDecide(text, agents, fallback, context, signal)).route;
  }

  private async classifyAndDecide(
    text: string,
    agents: readonly RoutableAgent[],
    fallback: string,
    context: ClassifyContext,
    signal: AbortSignal | undefined,
    ineligible: readonly string[] = [],
  ): Promise<RoutedTurn> {
    const floor = this.config.AGENT_ROUTING_FLOOR;
    if (agents.length === 0) {
      return {
        route: {
          agent: fallback,
          score: 0,
          classifier: 'default',
          fallback: true,
          reason: 'no-routable-agent',
        },
      };
    }
    let classification;
    try {
      classification = await this.classifier.classify(text, agents, context, signal);
    } catch (e) {
      if (signal?.aborted) throw e;
      this.logger.warn(
        `intent classifier failed, routing to ${fallback}: ${e instanceof Error ? e.message : String(e)}`,
      );
      return {
        route: {
          agent: fallback,
          score: 0,
          classifier: 'default',
          fallback: true,
          reason: 'classifier-unavailable',
        },
      };
    }
    const embedding = classification.embedding;
    const scores =
      ineligible.length > 0
        ? classification.scores.filter((s) => !ineligible.includes(s.agent))
        : classification.scores;
    const candidates = scores
      .slice(0, KEPT_CANDIDATES)
      .map((c) => ({ agent: c.agent, score: round(c.score) }));
    const best = scores[0];
    if (best && best.score >= floor) {
      return {
        route: {
          agent: best.agent,
          score: round(best.score),
          classifier: classification.classifier,
          floor,
          candidates,
        },
        embedding,
      };
    }
    return {
      route: {
        agent: fallback,
        score: round(best?.score ?? 0),
        classifier: classification.classifier,
        fallback: true,
        floor,
        candidates,
        reason: 'below-floor',
      },
      embedding,
    };
  }
}

const round = (x: number): number => Math.round(x * 1e4) / 1e4;
