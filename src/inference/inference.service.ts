import { Inject, Injectable, Logger } from '@nestjs/common';
import { InferenceConfig } from '../config/inference.config';
import { EndpointRouter, type Replica, type RoutingDecision } from './endpoint-router';
import { ENGINE_ADAPTER, type EngineAdapter } from './engine-adapter';
import {
  EngineError,
  EngineStreamCut,
  EngineTimeout,
  EngineUnavailable,
  EngineUnreachable,
  RequestAborted,
} from './inference.errors';
import type { ChatChoice, ChatRequest, ChatResult, ChatUsage, TokenizeInput } from './inference.types';

/**
 * Chat completions against the engine replicas, through the bound EngineAdapter (ENGINE_ADAPTER): picks
 * the replica with EndpointRouter, fails over to another replica while no token has been produced, and
 * measures TTFT at the first delta and ITL over the stream; the adapter reports usage, including
 * `cachedTokens` (vLLM `usage.prompt_tokens_details.cached_tokens`).
 */
@Injectable()
export class InferenceService {
  private readonly logger = new Logger(InferenceService.name);
  private model?: Promise<string>;

  constructor(
    private readonly router: EndpointRouter,
    private readonly config: InferenceConfig,
    @Inject(ENGINE_ADAPTER) private readonly engine: EngineAdapter,
  ) {}

  /** The model sent to the engine: INFERENCE_MODEL, else the first model the first replica lists. */
  async modelName(): Promise<string> {
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
   * Runs one chat completion, streaming deltas to `request.onToken`.
   * @returns the complete answer with usage and timings (ms)
   * @throws EngineUnavailable (unreachable / 503), EngineTimeout (no first token or no end in time),
   *   EngineStreamCut (stream ended without a finish reason), EngineBadRequest (400 from the engine),
   *   EngineError (other engine errors), RequestAborted (request.signal fired)
   */
  async chat(request: ChatRequest): Promise<ChatResult> {
    const model = await this.modelName();
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
        const result = await this.chatOn(decision.replica, model, request);
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
    const model = await this.modelName();
    const [tokens] = await this.onAnyReplica((replica) =>
      this.engine.tokenize(replica, model, input, 10_000),
    );
    return tokens;
  }

  private async chatOn(replica: Replica, model: string, request: ChatRequest): Promise<ChatResult> {
    const end = this.router.begin(replica);
    const controller = new AbortController();
    const onCallerAbort = (): void => controller.abort();
    request.signal?.addEventListener('abort', onCallerAbort, { once: true });
    let firstTokenTimedOut = false;
    const firstTokenTimer = setTimeout(() => {
      firstTokenTimedOut = true;
      controller.abort();
    }, this.config.INFERENCE_FIRST_TOKEN_TIMEOUT_MS);

    const started = performance.now();
    let ttftMs: number | undefined;
    let lastTokenAt = 0;
    let tokens = 0;
    let content = '';
    let finishReason: string | null = null;
    let usage: Partial<ChatUsage> = {};
    const choices: ChatChoice[] = [];
    let engineTimings: { engineTtftMs?: number; engineModelPrefillMs?: number } = {};
    try {
      const stream = await this.engine.chatStream(
        replica,
        {
          model,
          messages: request.messages,
          maxTokens: request.maxTokens ?? this.config.INFERENCE_DEFAULT_MAX_TOKENS,
          ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
          ...(request.sampling ? { sampling: request.sampling } : {}),
          ...(request.extra ? { extra: request.extra } : {}),
          ...(request.cacheSalt ? { cacheSalt: request.cacheSalt } : {}),
        },
        controller.signal,
      );
      engineTimings = stream.engineTimings;
      const firstToken = (): void => {
        const now = performance.now();
        if (ttftMs === undefined) {
          ttftMs = now - started;
          clearTimeout(firstTokenTimer);
        }
        lastTokenAt = now;
        tokens++;
      };
      for await (const event of stream.events) {
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
        throw new EngineTimeout(
          `No first token from ${replica.id} within ${this.config.INFERENCE_FIRST_TOKEN_TIMEOUT_MS} ms.`,
          { replica: replica.id },
        );
      }
      // A replica that could not be reached is skipped until a probe finds it again.
      if (e instanceof EngineUnreachable) this.router.markUnhealthy(replica, e.message);
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
      usage: {
        promptTokens: usage.promptTokens ?? 0,
        completionTokens: usage.completionTokens ?? tokens,
        cachedTokens: usage.cachedTokens ?? 0,
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
