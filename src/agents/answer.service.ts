import { Inject, Injectable, Optional } from '@nestjs/common';
import { replayDeltas } from '../caching/replay';
import { ResponseCache } from '../caching/response-cache.service';
import type { ResponseCacheScope } from '../caching/response-cache.types';
import { contextFingerprint } from '../caching/scope';
import { InferenceConfig } from '../config/inference.config';
import { ContextWindowService, type PreparedPrompt } from '../context/context-window.service';
import type { PromptSpec } from '../context/prompt.types';
import { InferenceService } from '../inference/inference.service';
import type { ChatResult } from '../inference/inference.types';
import { generationRouteMetadata, NOOP_TURN_TRACE } from '../observability/turn-trace';
import { PRICE_LOOKUP, type PriceLookup } from '../usage/price-lookup';
import { costBreakdown } from '../usage/usage-pricing';
import type { AgentTurnSink, RouteDecision, TurnInput, TurnOutput } from './agents.types';
import type { RetrievedPassage } from './chat-agent';

/** What an agent node hands to the answer step. */
export interface AnswerRequest {
  input: TurnInput;
  route: RouteDecision;
  /** The agent's prompt: stable prefix, template version, history, volatile context, user message. */
  prompt: PromptSpec;
  /** The user message's embedding when routing computed one (the semantic lookup reuses it). */
  messageEmbedding?: readonly number[];
  /** Passages the agent retrieved (their citations are stored; a cached answer is filed under their documents). */
  retrieved?: readonly RetrievedPassage[];
}

/**
 * The answer step every agent shares: fit the context window, consult the response cache,
 * assemble the prompt, call the engine, store cacheable answers. One place, so each cache
 * layer behaves the same whichever agent answers.
 *
 * Events sent to the sink, in order: `cache` (when the response cache is on: the miss before the
 * engine streams, or the hit), `token` (live deltas, or the cached answer replayed word by word),
 * `usage` (zero on a hit).
 */
@Injectable()
export class AnswerService {
  constructor(
    private readonly contextWindow: ContextWindowService,
    private readonly inference: InferenceService,
    private readonly inferenceConfig: InferenceConfig,
    private readonly responseCache: ResponseCache,
    /** Prices the engine call for its Langfuse generation (`costDetails`); absent: no cost traced. */
    @Optional() @Inject(PRICE_LOOKUP) private readonly prices?: PriceLookup,
  ) {}

  /**
   * @throws ContextLengthExceeded, Engine* errors, RequestAborted (`sink.signal` fired)
   */
  async answer(
    { input, route, prompt, messageEmbedding, retrieved }: AnswerRequest,
    sink: AgentTurnSink,
  ): Promise<TurnOutput> {
    const trace = input.trace ?? NOOP_TURN_TRACE;
    const citations = (retrieved ?? []).flatMap((p) => (p.citation ? [p.citation] : []));
    // Context window (policy, token counts) and the backend's prefix-reuse figure: src/context.
    const assembled = await this.contextWindow.prepare({
      tenantId: input.tenantId,
      conversationId: input.conversationId,
      state: input.context ?? null,
      spec: prompt,
      cacheSalt: input.cacheSalt,
      reservedOutputTokens: input.maxTokens ?? this.inferenceConfig.INFERENCE_DEFAULT_MAX_TOKENS,
      render: { now: new Date(), userName: input.userName },
    });
    // Response cache: on a hit no engine generation happens and the cached answer is replayed.
    const served = await this.responseCache.serve(
      {
        scope: await this.cacheScope(input, route, prompt, assembled),
        question: prompt.userMessage,
        control: input.cache,
        embedding: messageEmbedding,
        documents: citations.map((c) => c.documentId),
        trace,
      },
      (miss) => {
        if (miss) sink.emit({ type: 'cache', cache: miss });
        return this.generate(input, route, assembled, sink);
      },
      sink.signal,
    );
    const result = served.result;
    if (served.cached && served.report) {
      sink.emit({ type: 'cache', cache: served.report });
      for (const delta of replayDeltas(result.content)) sink.emit({ type: 'token', delta });
    }
    sink.emit({ type: 'usage', usage: result.usage });
    const { cache, answerTokenCount } = await this.contextWindow.report(assembled, result);
    return {
      ...result,
      // The catalogue target that answered, and every attempt before it (absent for a response-cache hit).
      route: result.provider ? { ...route, provider: result.provider } : route,
      templateVersion: assembled.templateVersion,
      cache: served.report ? { ...cache, response: served.report } : cache,
      ...(retrieved ? { citations } : {}),
      ...(served.cached ? { replacedUsage: served.cached.usage } : {}),
      context: assembled.state,
      userPromptContent: assembled.userContent,
      tokenCounts: {
        user: assembled.userTokenCount,
        assistant: answerTokenCount,
        history: assembled.historyTokenCounts,
      },
    };
  }

  /**
   * What the answer depends on besides the question: tenant, agent, model, template version,
   * generation parameters, and the prompt around the question (system head, summary, the history
   * actually sent, the volatile tail such as the date).
   */
  private async cacheScope(
    input: TurnInput,
    route: RouteDecision,
    prompt: PromptSpec,
    assembled: PreparedPrompt,
  ): Promise<ResponseCacheScope> {
    const tail = assembled.userContent.endsWith(prompt.userMessage)
      ? assembled.userContent.slice(0, assembled.userContent.length - prompt.userMessage.length)
      : assembled.userContent;
    return {
      tenantId: input.tenantId,
      agent: route.agent,
      model: await this.inference.modelName(),
      templateVersion: assembled.templateVersion,
      params: {
        temperature: input.temperature ?? null,
        maxTokens: input.maxTokens ?? this.inferenceConfig.INFERENCE_DEFAULT_MAX_TOKENS,
      },
      // The history before the new message, as its running digest (kept turn to turn, not rehashed).
      context: contextFingerprint({ historyDigest: assembled.historyDigest, volatileContext: tail }),
    };
  }

  /** The engine call, traced as a generation. */
  private async generate(
    input: TurnInput,
    route: RouteDecision,
    assembled: PreparedPrompt,
    sink: AgentTurnSink,
  ): Promise<ChatResult> {
    const trace = input.trace ?? NOOP_TURN_TRACE;
    const generation = trace.generation('engine', assembled.messages, {
      agent: route.agent,
      templateVersion: assembled.templateVersion,
    });
    let firstToken = true;
    try {
      const result = await this.inference.chat({
        messages: assembled.messages,
        maxTokens: input.maxTokens,
        temperature: input.temperature,
        cacheSalt: input.cacheSalt,
        routingKey: input.conversationId,
        promptTokenIds: assembled.promptFingerprint,
        promptBlockHashes: assembled.promptBlockHashes,
        signal: sink.signal,
        onToken: (delta) => {
          if (firstToken) generation.firstToken();
          firstToken = false;
          sink.emit({ type: 'token', delta });
        },
      });
      const { promptTokens, cachedTokens } = result.usage;
      generation.end({
        output: result.content,
        model: result.model,
        usage: result.usage,
        cost: costBreakdown(result.usage, this.prices?.priceOf(result.model) ?? null) ?? undefined,
        metadata: {
          ...generationRouteMetadata(result),
          templateVersion: assembled.templateVersion,
          prefixReuse: promptTokens > 0 ? cachedTokens / promptTokens : 0,
        },
      });
      return result;
    } catch (e) {
      generation.end({ error: e instanceof Error ? e.message : String(e) });
      throw e;
    }
  }
}
