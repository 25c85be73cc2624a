import { Inject, Injectable, Logger } from '@nestjs/common';
import { InferenceConfig } from '../config/inference.config';
import type { Deployment, ModelCatalogueData, ProviderName } from './catalogue/model-catalogue';
import { ModelCatalogue } from './catalogue/model-catalogue.service';
import { DeploymentGuards, isDeploymentFailure, type ProviderAttempt } from './deployment-guards';
import { EndpointRouter, type Replica, type RoutingDecision } from './endpoint-router';
import {
  ENGINE_ADAPTER,
  type EngineAdapter,
  type EngineChatEvent,
  type EngineChatRequest,
  type EngineEndpoint,
} from './engine-adapter';
import { DomainError } from '../common/domain-error';
import {
  EngineError,
  EngineStreamCut,
  EngineTimeout,
  EngineUnavailable,
  EngineUnreachable,
  RequestAborted,
} from './inference.errors';
import type { ChatChoice, ChatRequest, ChatResult, ChatUsage, TokenizeInput } from './inference.types';

/** Injection token of the adapters by provider name (`vllm` is ENGINE_ADAPTER). Bound in inference.module.ts. */
export const PROVIDER_ADAPTERS = Symbol('PROVIDER_ADAPTERS');
export type ProviderAdapters = Record<ProviderName, EngineAdapter>;

/**
 * Chat completions for the catalogue's public models. A request's targets are its model's deployments
 * (the first drawn by weight), then its fallbacks; each target is guarded by DeploymentGuards (circuit
 * breaker, rpm/tpm) and answered by its provider's EngineAdapter. A `vllm` deployment without a base URL
 * is the engine replicas: EndpointRouter picks the replica (prefix-aware) and another replica is tried
 * while no token has been produced. The next target is tried on 429, 5xx, connection errors and a
 * first-token timeout, only while no token has reached the caller. TTFT is measured at the first delta,
 * ITL over the stream (a caller that reads the answer whole gets one JSON answer where the adapter can:
 * its TTFT is the time to the whole answer, bounded by the whole request's deadline); the adapter reports usage, including `cachedTokens` (vLLM/OpenAI
 * `cached_tokens`, Anthropic `cache_read_input_tokens`).
 */
@Injectable()
export class InferenceService {
  private readonly logger = new Logger(InferenceService.name);
  private model?: Promise<string>;

  constructor(
    private readonly router: EndpointRouter,
    private readonly config: InferenceConfig,
    @Inject(ENGINE_ADAPTER) private readonly engine: EngineAdapter,
    private readonly catalogue: ModelCatalogue,
    private readonly guards: DeploymentGuards,
    @Inject(PROVIDER_ADAPTERS) private readonly adapters: ProviderAdapters,
  ) {}

  /** The catalogue in force (the file, or the engine replicas' model). */
  catalogueData(): Promise<ModelCatalogueData> {
    return this.catalogue.data(() => this.engineModel());
  }

  /** The default public model: the catalogue's first (without a file, the engine replicas' model). */
  async modelName(): Promise<string> {
    return (await this.catalogueData()).models[0].name;
  }

  /** The public model names, in catalogue order. */
  async modelNames(): Promise<string[]> {
    return ModelCatalogue.names(await this.catalogueData());
  }

  /** `name` when the catalogue lists it. @throws ModelNotServed (404) naming the served models */
  async resolveModel(name: string): Promise<string> {
    return ModelCatalogue.model(await this.catalogueData(), name).name;
  }

  /** The model the engine replicas serve: INFERENCE_MODEL, else the first model the first replica lists. */
  async engineModel(): Promise<string> {
    if (this.config.INFERENCE_MODEL) return this.config.INFERENCE_MODEL;
    this.model ??= this.discoverModel().catch((e: unknown) => {
      this.model = undefined;
      throw e;
    });
    return this.model;
  }

  /** The first model a replica lists; an unreachable replica is skipped (like tokenize, without marking it). */
  private async discoverModel(): Promise<string> {
    const [models, replica] = await this.onAnyReplica((r) => this.engine.models(r, 5000));
    const first = models[0];
    if (!first) throw new EngineError(`Replica ${replica.id} lists no model; set INFERENCE_MODEL.`);
    return first;
  }

  /**
   * Runs a side request every replica answers alike (models, tokenize) on the least-loaded replica, asking
   * another when one is unavailable, up to 1 + ROUTER_RETRIES replicas. Health is not touched: a side
   * request goes to whichever replica is idle, not the one a turn's chat is routed to; marking from here
   * would clear that replica's prefix index on a side request's error. Chats (which fail over) and the
   * probes keep health.
   */
  private async onAnyReplica<T>(call: (replica: Replica) => Promise<T>): Promise<[T, Replica]> {
    const tried = new Set<string>();
    let lastError: unknown;
    for (let attempt = 1; attempt <= 1 + this.config.ROUTER_RETRIES; attempt++) {
      let replica: Replica;
      try {
        replica = this.router.pickAny(tried);
      } catch (e) {
        throw lastError ?? e;
      }
      try {
        return [await call(replica), replica];
      } catch (e) {
        if (!(e instanceof EngineUnavailable)) throw e;
        tried.add(replica.id);
        lastError = e;
      }
    }
    throw lastError;
  }

  /**
   * Runs one chat completion on `request.model` (default: the catalogue's first), streaming deltas to
   * `request.onToken`, trying the model's targets in order until one answers.
   * @returns the complete answer with usage, timings (ms) and `provider` (the target and every attempt)
   * @throws ModelNotServed (404); when every target failed or was skipped, the last target's error —
   *   EngineUnavailable (unreachable / 429 / 503, or every breaker open), EngineTimeout (no first token or
   *   no end in time), EngineStreamCut, EngineBadRequest (400 from the upstream), EngineError — with the
   *   attempts in its extensions; RequestAborted (request.signal fired)
   */
  async chat(request: ChatRequest): Promise<ChatResult> {
    const data = await this.catalogueData();
    const publicModel = request.model ?? data.models[0].name;
    const targets = ModelCatalogue.targets(data, publicModel);
    const attempts: ProviderAttempt[] = [];
    let lastError: Error | undefined;
    for (const deployment of targets) {
      const started = performance.now();
      let delivered = false;
      // The route goes out once, before the first piece of the answer (text, tool call or logprobs).
      const deliver = (): void => {
        if (!delivered) {
          delivered = true;
          request.onProviderRoute?.({
            model: publicModel,
            deployment: deployment.id,
            provider: deployment.provider,
            upstreamModel: deployment.model,
            attempts: [
              ...attempts,
              {
                deployment: deployment.id,
                provider: deployment.provider,
                model: publicModel,
                outcome: 'ok',
                ms: Math.round(performance.now() - started),
              },
            ],
          });
        }
      };
      const guarded: ChatRequest = {
        ...request,
        onToken: (delta) => {
          deliver();
          request.onToken?.(delta);
        },
        onChoiceDelta: (delta) => {
          if (delta.type !== 'finish') deliver();
          request.onChoiceDelta?.(delta);
        },
      };
      const attempt = (
        outcome: ProviderAttempt['outcome'],
        extra: Partial<ProviderAttempt> = {},
      ): ProviderAttempt => {
        const a: ProviderAttempt = {
          deployment: deployment.id,
          provider: deployment.provider,
          model: publicModel,
          outcome,
          ms: outcome === 'skipped' ? 0 : Math.round(performance.now() - started),
          ...extra,
        };
        attempts.push(a);
        this.guards.count(a);
        return a;
      };
      try {
        const run = await this.guards.run(deployment, () => this.chatOnDeployment(deployment, guarded));
        if ('skipped' in run) {
          attempt('skipped', { reason: run.skipped });
          continue;
        }
        attempt('ok');
        const result = run.value;
        void this.guards
          .chargeTokens(deployment, result.usage.promptTokens + result.usage.completionTokens)
          .catch(() => undefined);
        return {
          ...result,
          model: publicModel,
          provider: {
            model: publicModel,
            deployment: deployment.id,
            provider: deployment.provider,
            upstreamModel: result.model,
            attempts,
          },
        };
      } catch (e) {
        const status = e instanceof DomainError ? e.extensions.status : undefined;
        attempt('failed', {
          ...(e instanceof DomainError ? { code: e.code } : {}),
          ...(typeof status === 'number' ? { status } : {}),
        });
        if (e instanceof DomainError) e.extensions.attempts = attempts;
        // The next target only while nothing has reached the caller, and only for the deployment's faults.
        if (delivered || request.signal?.aborted || !isDeploymentFailure(e)) throw e;
        const retryAfterMs = e instanceof DomainError ? e.extensions.retryAfterMs : undefined;
        if (typeof retryAfterMs === 'number' && retryAfterMs > 0)
          this.guards.coolDown(deployment.id, retryAfterMs);
        lastError = e as Error;
        this.logger.warn(`${deployment.id} failed, trying the next target: ${(e as Error).message}`);
      }
    }
    if (lastError) throw lastError;
    throw new EngineUnavailable(
      `Every deployment of \`${publicModel}\` is cooling down (circuit breaker open or rpm/tpm spent).`,
      { model: publicModel, attempts },
    );
  }

  /** One target: the engine replicas (vLLM without a base URL) or one upstream endpoint. */
  private chatOnDeployment(deployment: Deployment, request: ChatRequest): Promise<ChatResult> {
    if (deployment.provider === 'vllm' && !deployment.baseURL)
      return this.chatOnReplicas(deployment.model, request);
    const endpoint: EngineEndpoint = {
      id: deployment.id,
      baseURL: deployment.baseURL ?? '',
      ...(deployment.apiKey ? { apiKey: deployment.apiKey } : {}),
      ...(deployment.timeoutMs ? { timeoutMs: deployment.timeoutMs } : {}),
      ...(deployment.headers ? { headers: deployment.headers } : {}),
    };
    return this.chatOn(this.adapters[deployment.provider], endpoint, deployment.model, request, {
      firstTokenTimeoutMs: deployment.firstTokenTimeoutMs,
    });
  }

  /** The engine replicas: EndpointRouter's choice, another replica while the answer has not started. */
  private async chatOnReplicas(model: string, request: ChatRequest): Promise<ChatResult> {
    const tried = new Set<string>();
    const attempts = 1 + this.config.ROUTER_RETRIES;
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let decision: RoutingDecision;
      try {
        decision = this.router.route({
          routingKey: request.routingKey,
          promptTokenIds: request.promptTokenIds,
          promptBlockHashes: request.promptBlockHashes,
          cacheSalt: request.cacheSalt,
          exclude: tried,
        });
      } catch (e) {
        throw lastError ?? e;
      }
      try {
        const replica = decision.replica;
        const result = await this.chatOn(this.engine, replica, model, request, {
          begin: () => this.router.begin(replica),
          onUnreachable: (message) => this.router.markUnhealthy(replica, message),
        });
        return {
          ...result,
          routing: {
            policy: decision.policy,
            reason: decision.reason,
            attempts: attempt,
            ...(decision.matchedTokens !== undefined ? { matchedTokens: decision.matchedTokens } : {}),
          },
        };
      } catch (e) {
        // Only an engine that could not start the answer is retried elsewhere: no token has reached the caller.
        if (!(e instanceof EngineUnavailable) || request.signal?.aborted) throw e;
        tried.add(decision.replica.id);
        lastError = e;
        if (attempt < attempts) this.logger.warn(`retrying on another replica: ${e.message}`);
      }
    }
    throw lastError;
  }

  /**
   * Token ids from the engine's tokenizer (the adapter's `tokenize`; vLLM: `POST /tokenize`). `prompt`
   * is tokenized without special tokens; `messages` through the engine's chat template.
   * @throws EngineTokenizeUnsupported when the engine cannot tokenize, else Engine* errors
   */
  async tokenize(input: TokenizeInput): Promise<number[]> {
    const model = await this.engineModel();
    const [tokens] = await this.onAnyReplica((replica) =>
      this.engine.tokenize(replica, model, input, 10_000),
    );
    return tokens;
  }

  /**
   * One chat on one endpoint through `adapter`, streamed (or one JSON answer for `request.wholeAnswer`,
   * where the adapter has `chatAnswer`), with the first-token deadline (the whole request's, for a
   * JSON answer) and the caller's cancellation. `hooks.begin` counts the request in flight on a replica (returns its end);
   * `hooks.onUnreachable` marks a replica unhealthy.
   */
  private async chatOn(
    adapter: EngineAdapter,
    replica: EngineEndpoint,
    model: string,
    request: ChatRequest,
    hooks: {
      begin?: () => () => void;
      onUnreachable?: (message: string) => void;
      firstTokenTimeoutMs?: number;
    },
  ): Promise<ChatResult> {
    const end = hooks.begin?.() ?? ((): void => undefined);
    // A caller that reads the answer whole gets it in one JSON answer when the adapter can (no stream to
    // parse). Its deadline is then the whole request's (INFERENCE_TIMEOUT_MS, or the first-token deadline if
    // that is longer): a first-token deadline would cut long answers a stream would have delivered.
    const whole = request.wholeAnswer === true && adapter.chatAnswer !== undefined;
    const firstTokenTimeoutMs = hooks.firstTokenTimeoutMs ?? this.config.INFERENCE_FIRST_TOKEN_TIMEOUT_MS;
    const deadlineMs = whole
      ? Math.max(firstTokenTimeoutMs, this.config.INFERENCE_TIMEOUT_MS)
      : firstTokenTimeoutMs;
    const controller = new AbortController();
    const onCallerAbort = (): void => controller.abort();
    request.signal?.addEventListener('abort', onCallerAbort, { once: true });
    let firstTokenTimedOut = false;
    const firstTokenTimer = setTimeout(() => {
      firstTokenTimedOut = true;
      controller.abort();
    }, deadlineMs);

    const started = performance.now();
    let ttftMs: number | undefined;
    let lastTokenAt = 0;
    let tokens = 0;
    let content = '';
    let finishReason: string | null = null;
    let usage: Partial<ChatUsage> = {};
    const choices: ChatChoice[] = [];
    let engineTimings: { engineTtftMs?: number; engineModelPrefillMs?: number } = {};
    // For a whole answer the timer runs until the whole answer, where its first delta clears it.
    const firstToken = (): void => {
      const now = performance.now();
      if (ttftMs === undefined) {
        ttftMs = now - started;
        clearTimeout(firstTokenTimer);
      }
      lastTokenAt = now;
      tokens++;
    };
    const consume = (event: EngineChatEvent): void => {
      const index = 'choice' in event ? (event.choice ?? 0) : 0;
      switch (event.type) {
        case 'delta': {
          firstToken();
          choiceAt(choices, index).content += event.text;
          if (index === 0) {
            content += event.text;
            request.onToken?.(event.text);
          }
          request.onChoiceDelta?.({ type: 'content', choice: index, text: event.text });
          break;
        }
        case 'tool_call': {
          firstToken();
          const calls = choiceAt(choices, index).toolCalls;
          const call = (calls[event.index] ??= {
            id: event.id ?? '',
            type: 'function',
            function: { name: event.name ?? '', arguments: '' },
          });
          if (event.id) call.id = event.id;
          if (event.name) call.function.name = event.name;
          call.function.arguments += event.arguments;
          request.onChoiceDelta?.({ ...event, choice: index });
          break;
        }
        case 'logprobs': {
          const choice = choiceAt(choices, index);
          choice.logprobs = [...(choice.logprobs ?? []), ...event.content];
          request.onChoiceDelta?.({ type: 'content', choice: index, text: '', logprobs: event.content });
          break;
        }
        case 'finish':
          choiceAt(choices, index).finishReason = event.reason;
          if (index === 0) finishReason = event.reason;
          request.onChoiceDelta?.({ type: 'finish', choice: index, reason: event.reason });
          break;
        case 'usage':
          usage = { ...usage, ...event.usage };
          break;
      }
    };
    try {
      const engineRequest: EngineChatRequest = {
        model,
        messages: request.messages,
        maxTokens: request.maxTokens ?? this.config.INFERENCE_DEFAULT_MAX_TOKENS,
        ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
        ...(request.sampling ? { sampling: request.sampling } : {}),
        ...(request.extra ? { extra: request.extra } : {}),
        ...(request.cacheSalt ? { cacheSalt: request.cacheSalt } : {}),
        ...(request.promptCacheKey || request.routingKey
          ? { promptCacheKey: request.promptCacheKey ?? request.routingKey }
          : {}),
      };
      if (whole && adapter.chatAnswer) {
        const answer = await adapter.chatAnswer(replica, engineRequest, controller.signal);
        engineTimings = answer.engineTimings;
        for (const event of answer.events) consume(event);
      } else {
        const stream = await adapter.chatStream(replica, engineRequest, controller.signal);
        engineTimings = stream.engineTimings;
        // Pushed where the adapter can (no promise per event: a long answer is hundreds), else pulled.
        if (stream.forEachEvent) await stream.forEachEvent(consume);
        else for await (const event of stream.events) consume(event);
      }
      if (!finishReason) {
        throw new EngineStreamCut(`The stream from ${replica.id} ended before the answer finished.`, {
          replica: replica.id,
          receivedTokens: tokens,
        });
      }
    } catch (e) {
      if (request.signal?.aborted)
        throw new RequestAborted('The client disconnected; the engine request was aborted.');
      if (firstTokenTimedOut) {
        const what = whole ? 'No whole answer' : 'No first token';
        throw new EngineTimeout(`${what} from ${replica.id} within ${deadlineMs} ms.`, {
          replica: replica.id,
        });
      }
      // A replica that could not be reached is skipped until a probe finds it again.
      if (e instanceof EngineUnreachable) hooks.onUnreachable?.(e.message);
      throw e;
    } finally {
      clearTimeout(firstTokenTimer);
      request.signal?.removeEventListener('abort', onCallerAbort);
      end();
    }
    const totalMs = performance.now() - started;
    return {
      content,
      finishReason,
      choices: choices.filter((c) => c !== undefined),
      model,
      replica: replica.id,
      ...(whole ? { wholeAnswer: true } : {}),
      usage: {
        promptTokens: usage.promptTokens ?? 0,
        completionTokens: usage.completionTokens ?? tokens,
        cachedTokens: usage.cachedTokens ?? 0,
        ...(usage.cacheWriteTokens !== undefined ? { cacheWriteTokens: usage.cacheWriteTokens } : {}),
      },
      timings: {
        ttftMs: ttftMs ?? totalMs,
        totalMs,
        itlMs: tokens > 1 && ttftMs !== undefined ? (lastTokenAt - started - ttftMs) / (tokens - 1) : 0,
        ...engineTimings,
      },
    };
  }
}

/** The choice at `index`, created on its first event. */
function choiceAt(choices: ChatChoice[], index: number): ChatChoice {
  return (choices[index] ??= { index, content: '', toolCalls: [], logprobs: null, finishReason: '' });
}
