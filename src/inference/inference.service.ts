import { Injectable, Logger } from '@nestjs/common';
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { InferenceConfig } from '../config/inference.config';
import { EndpointRouter, type Replica, type RoutingDecision } from './endpoint-router';
import {
  EngineBadRequest,
  EngineError,
  EngineStreamCut,
  EngineTimeout,
  EngineTokenizeUnsupported,
  EngineUnavailable,
  RequestAborted,
} from './inference.errors';
import type { ChatRequest, ChatResult, TokenizeInput } from './inference.types';

/** vLLM's `/tokenize` response (also the simulator's). */
interface TokenizeResponse {
  count: number;
  max_model_len?: number;
  tokens: number[];
}

/** vLLM extensions to the OpenAI chat request body. */
interface VllmChatExtensions {
  /** Mixed into the first KV block's hash so tenants never share cached blocks (vLLM >= 0.9). */
  cache_salt?: string;
}

/**
 * Chat completions against the engine replicas through the `openai` SDK: always streamed with
 * `stream_options.include_usage`, so TTFT is measured at the first token and
 * `usage.prompt_tokens_details.cached_tokens` (vLLM `--enable-prompt-tokens-details`) is read.
 */
@Injectable()
export class InferenceService {
  private readonly logger = new Logger(InferenceService.name);
  private model?: Promise<string>;

  constructor(
    private readonly router: EndpointRouter,
    private readonly config: InferenceConfig,
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

  private async discoverModel(): Promise<string> {
    const replica = this.router.pickAny();
    try {
      const page = await replica.client.models.list({ timeout: 5000 });
      const first = page.data[0];
      if (!first) throw new EngineError(`Replica ${replica.id} lists no model; set INFERENCE_MODEL.`);
      return first.id;
    } catch (e) {
      throw this.translate(e, replica, undefined);
    }
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
   * Token ids from the engine's tokenizer: vLLM's `POST /tokenize` at the server root, called through
   * the SDK client's generic `post`. `prompt` is tokenized without special tokens; `messages` through
   * the engine's chat template.
   * @throws EngineTokenizeUnsupported when the engine has no `/tokenize` (404/405), else Engine* errors
   */
  async tokenize(input: TokenizeInput): Promise<number[]> {
    const model = await this.modelName();
    const body =
      'messages' in input
        ? { model, messages: input.messages, add_generation_prompt: input.addGenerationPrompt ?? true }
        : { model, prompt: input.prompt, add_special_tokens: false };
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
        const response = await replica.client.post<TokenizeResponse>(`${replica.rootURL}/tokenize`, {
          body,
          timeout: 10_000,
          maxRetries: 0,
        });
        if (!Array.isArray(response.tokens)) {
          throw new EngineError(`Replica ${replica.id} answered /tokenize without tokens.`);
        }
        return response.tokens;
      } catch (e) {
        if (e instanceof APIError && (e.status === 404 || e.status === 405)) {
          throw new EngineTokenizeUnsupported(`The engine at ${replica.id} has no /tokenize endpoint.`, {
            replica: replica.id,
          });
        }
        const error = this.translate(e, replica, undefined);
        // Any replica tokenizes the same way: an unreachable one is skipped for this call and another
        // asked, but not marked unhealthy. Tokenize goes to whichever replica is idle, not the one the
        // turn's chat is routed to; marking from here would clear that replica's prefix index on a side
        // request's error and decide, by which replica was idle, whether the chat finds the failure
        // itself. Health is left to chats (which retry elsewhere) and the probes.
        if (!(error instanceof EngineUnavailable)) throw error;
        tried.add(replica.id);
        lastError = error;
      }
    }
    throw lastError;
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
    let usage: ChatCompletionChunk['usage'] | undefined;
    let engineTtftMs: number | undefined;
    let engineModelPrefillMs: number | undefined;
    try {
      const body: OpenAI.ChatCompletionCreateParamsStreaming & VllmChatExtensions = {
        model,
        messages: request.messages,
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: request.maxTokens ?? this.config.INFERENCE_DEFAULT_MAX_TOKENS,
        ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
        ...request.sampling,
        ...(request.cacheSalt ? { cache_salt: request.cacheSalt } : {}),
      };
      const { data: stream, response } = await replica.client.chat.completions
        .create(body, { signal: controller.signal })
        .withResponse();
      engineTtftMs = numericHeader(response.headers, 'x-kvchat-engine-ttft-ms');
      engineModelPrefillMs = numericHeader(response.headers, 'x-kvchat-engine-model-prefill-ms');
      for await (const chunk of stream) {
        if (chunk.usage) usage = chunk.usage;
        const choice = chunk.choices[0];
        if (!choice) continue;
        const delta = choice.delta?.content ?? '';
        if (delta.length > 0) {
          const now = performance.now();
          if (ttftMs === undefined) {
            ttftMs = now - started;
            clearTimeout(firstTokenTimer);
          }
          lastTokenAt = now;
          tokens++;
          content += delta;
          request.onToken?.(delta);
        }
        if (choice.finish_reason) finishReason = choice.finish_reason;
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
      throw this.translate(e, replica, tokens, { markUnreachable: true });
    } finally {
      clearTimeout(firstTokenTimer);
      request.signal?.removeEventListener('abort', onCallerAbort);
      end();
    }
    const totalMs = performance.now() - started;
    return {
      content,
      finishReason,
      model,
      replica: replica.id,
      usage: {
        promptTokens: usage?.prompt_tokens ?? 0,
        completionTokens: usage?.completion_tokens ?? tokens,
        cachedTokens: usage?.prompt_tokens_details?.cached_tokens ?? 0,
      },
      timings: {
        ttftMs: ttftMs ?? totalMs,
        totalMs,
        itlMs: tokens > 1 && ttftMs !== undefined ? (lastTokenAt - started - ttftMs) / (tokens - 1) : 0,
        ...(engineTtftMs !== undefined ? { engineTtftMs } : {}),
        ...(engineModelPrefillMs !== undefined ? { engineModelPrefillMs } : {}),
      },
    };
  }

  /**
   * Maps SDK and network errors to domain errors. With `markUnreachable` (chats) a replica that could not
   * be reached is marked unhealthy; side requests (`/tokenize`, `/v1/models`) leave health to chats and probes.
   */
  private translate(
    e: unknown,
    replica: Replica,
    receivedTokens: number | undefined,
    { markUnreachable = false }: { markUnreachable?: boolean } = {},
  ): Error {
    if (e instanceof EngineStreamCut || e instanceof EngineError || e instanceof EngineUnavailable) return e;
    const ext = { replica: replica.id };
    if (e instanceof APIConnectionTimeoutError) {
      return new EngineTimeout(
        `The engine at ${replica.id} did not answer within ${this.config.INFERENCE_TIMEOUT_MS} ms.`,
        ext,
      );
    }
    if (e instanceof APIUserAbortError)
      return new EngineTimeout(`The request to ${replica.id} was aborted.`, ext);
    if (e instanceof APIConnectionError) {
      if (receivedTokens !== undefined && receivedTokens > 0) {
        return new EngineStreamCut(
          `The connection to ${replica.id} broke after ${receivedTokens} tokens.`,
          ext,
        );
      }
      if (markUnreachable) this.router.markUnhealthy(replica, e.message);
      return new EngineUnavailable(`The engine at ${replica.id} is unreachable: ${e.message}`, ext);
    }
    if (e instanceof APIError) {
      const status: number = typeof e.status === 'number' ? e.status : 0;
      if (status === 400 || status === 422)
        return new EngineBadRequest(`The engine rejected the request: ${e.message}`, ext);
      if (status === 503 || status === 429)
        return new EngineUnavailable(
          `The engine at ${replica.id} is overloaded or unavailable (${status}).`,
          ext,
        );
      return new EngineError(
        `The engine at ${replica.id} failed with ${status || 'an error'}: ${e.message}`,
        ext,
      );
    }
    // undici reports a connection cut mid-body as `TypeError: terminated` (cause UND_ERR_SOCKET). It may come
    // from another realm (jest's vm), so test the shape, not `instanceof Error`.
    const message =
      typeof (e as { message?: unknown })?.message === 'string' ? (e as { message: string }).message : '';
    if (/terminated|ECONNRESET|socket|premature/i.test(message)) {
      return new EngineStreamCut(`The stream from ${replica.id} broke: ${message}`, ext);
    }
    this.logger.error({ err: e }, 'unexpected engine error');
    return new EngineError(`Unexpected engine error from ${replica.id}.`, ext);
  }
}

/** A numeric response header (the simulator reports its own timings this way), or undefined. */
function numericHeader(headers: Headers, name: string): number | undefined {
  const raw = headers.get(name);
  if (raw === null) return undefined;
  const value = Number(raw);
  return Number.isFinite(value) ? value : undefined;
}
