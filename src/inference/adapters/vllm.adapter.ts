import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type { ChatCompletion, ChatCompletionChunk } from 'openai/resources/chat/completions';
import { Agent } from 'undici';
import { InferenceConfig } from '../../config/inference.config';
import type {
  EngineAdapter,
  EngineCacheCounters,
  EngineChatAnswer,
  EngineChatEvent,
  EngineChatRequest,
  EngineChatStream,
  EngineEndpoint,
} from '../engine-adapter';
import {
  EngineBadRequest,
  EngineError,
  EngineStreamCut,
  EngineTimeout,
  EngineTokenizeUnsupported,
  EngineUnavailable,
  EngineUnreachable,
} from '../inference.errors';
import type { TokenizeInput, WireChatMessage } from '../inference.types';
import { type PromSample, parsePrometheusText, sumCounter } from '../prometheus-text';
import {
  type ChatStreamResponse,
  postChatStream,
  postJson,
  postJsonWithHeaders,
} from './chat-stream-request';
import { ClientPerEndpoint } from './client-per-endpoint';

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

/** A wire message as the OpenAI SDK types it (an assistant message with only tool calls has null content). */
function toOpenAiMessage(m: WireChatMessage): OpenAI.ChatCompletionMessageParam {
  const name = m.name !== undefined ? { name: m.name } : {};
  switch (m.role) {
    case 'tool':
      return { role: 'tool', content: m.content, tool_call_id: m.tool_call_id ?? '' };
    case 'assistant':
      return m.tool_calls?.length
        ? {
            role: 'assistant',
            content: m.content === '' ? null : m.content,
            tool_calls: m.tool_calls,
            ...name,
          }
        : { role: 'assistant', content: m.content, ...name };
    case 'system':
      return { role: 'system', content: m.content, ...name };
    case 'user':
      return { role: 'user', content: m.content, ...name };
  }
}

/** `http://host:8000/v1` -> `http://host:8000`: where vLLM serves `/tokenize`, `/metrics`, `/health`. */
export function rootUrlOf(baseURL: string): string {
  return baseURL.replace(/\/+$/, '').replace(/\/v1$/, '');
}

/** Reads the cache counters kvchat uses from a replica's Prometheus exposition (vLLM and LMCache names). */
export function cacheCountersOf(samples: readonly PromSample[]): EngineCacheCounters {
  const queried = sumCounter(samples, 'vllm:prefix_cache_queries') ?? 0;
  const hits = sumCounter(samples, 'vllm:prefix_cache_hits') ?? 0;
  const requested = sumCounter(samples, 'lmcache:num_requested_tokens');
  const lmHits = sumCounter(samples, 'lmcache:num_hit_tokens');
  return {
    prefixCacheQueriedTokens: queried,
    prefixCacheHitTokens: hits,
    prefixCacheHitRate: queried > 0 ? hits / queried : null,
    promptTokens: sumCounter(samples, 'vllm:prompt_tokens') ?? null,
    lmcache:
      requested === undefined && lmHits === undefined
        ? null
        : {
            requestedTokens: requested ?? 0,
            hitTokens: lmHits ?? 0,
            hitRate: requested ? (lmHits ?? 0) / requested : null,
            storedTokens: sumCounter(samples, 'lmcache:num_stored_tokens') ?? null,
          },
  };
}

/**
 * vLLM (and any OpenAI-compatible server) through the `openai` SDK, one client per endpoint:
 * - chat: streamed with `stream_options.include_usage` (undici + eventsource-parser, not the SDK's
 *   fetch and SSE decoder: chat-stream-request.ts), so the caller measures TTFT at the first delta and reads
 *   `usage.prompt_tokens_details.cached_tokens` (vLLM `--enable-prompt-tokens-details`); or, for a caller
 *   that does not stream, one JSON answer (`chatAnswer`, `stream: false`, undici); `cache_salt` (vLLM >= 0.9)
 *   carries the tenant's salt;
 * - tokenize: vLLM's `POST /tokenize` at the server root (404/405 = unsupported);
 * - models and health: `GET /v1/models` (every OpenAI-compatible server has it, not all have `/health`);
 * - metrics: `GET /metrics` (Prometheus text), `vllm:prefix_cache_*` and `lmcache:*` counters.
 * See https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html.
 */
@Injectable()
export class VllmEngineAdapter implements EngineAdapter, OnApplicationShutdown {
  readonly name: string = 'vllm';
  private readonly logger = new Logger('Inference');
  private readonly clients: ClientPerEndpoint<OpenAI>;
  /**
   * The connection pools of the requests sent through undici (chat streams, whole answers, `/tokenize`):
   * this adapter's own, so they are undici's (this package's version) whatever else runs in the process.
   * Without it, undici's `request` takes the process's global dispatcher, and once anything has called
   * Node's `fetch` (the SDK does, for `/v1/models`) that is Node's bundled undici (6.x on Node 20): every
   * engine request then crossed two undici versions (docs/scaling.md, "Tenth pass"). Idle connections are
   * kept 4 s, under the 5 s after which vLLM's server (uvicorn, VLLM_HTTP_TIMEOUT_KEEP_ALIVE) closes them,
   * so a request is never sent on a connection the engine is closing.
   */
  protected readonly engineAgent = new Agent({ keepAliveTimeout: 4_000, keepAliveMaxTimeout: 4_000 });
  /** Chat streams through the SDK rather than postChatStream (hosted APIs: the SDK's headers and quirks). */
  protected readonly streamsThroughSdk: boolean = false;

  constructor(protected readonly config: InferenceConfig) {
    this.clients = new ClientPerEndpoint(
      (options) => new OpenAI(options),
      config.INFERENCE_TIMEOUT_MS,
      config.INFERENCE_API_KEY,
    );
  }

  /**
   * Cuts the engine connections. Shutdown comes after the drain (src/lifecycle), so whatever request is
   * still open here is one the drain gave up on, and must not hold the process.
   */
  async onApplicationShutdown(): Promise<void> {
    await this.engineAgent.destroy();
  }

  /** One SDK client per endpoint (retries off: InferenceService owns failover). */
  protected client(endpoint: EngineEndpoint): OpenAI {
    return this.clients.get(endpoint);
  }

  /** The streamed Chat Completions body; vLLM adds `cache_salt`. */
  protected chatBody(request: EngineChatRequest): OpenAI.ChatCompletionCreateParamsStreaming {
    const body: OpenAI.ChatCompletionCreateParamsStreaming & VllmChatExtensions = {
      ...openAiChatBody(request),
      ...(request.cacheSalt ? { cache_salt: request.cacheSalt } : {}),
    };
    return body;
  }

  async chatStream(
    endpoint: EngineEndpoint,
    request: EngineChatRequest,
    signal: AbortSignal,
  ): Promise<EngineChatStream> {
    const body = this.chatBody(request);
    try {
      const { stream, headers, forEachChunk } = await this.openStream(endpoint, body, signal);
      return {
        engineTimings: engineTimingsOf(headers),
        events: this.events(stream, endpoint),
        ...(forEachChunk
          ? {
              forEachEvent: (onEvent: (event: EngineChatEvent) => void) =>
                this.forEachEvent(forEachChunk, endpoint, onEvent),
            }
          : {}),
      };
    } catch (e) {
      throw this.translate(e, endpoint, 0);
    }
  }

  /**
   * One non-streamed chat completion (`stream: false`): the engine's JSON answer as engine events. Through
   * undici (postJsonWithHeaders), or through the SDK where `streamsThroughSdk`. The engine does the same
   * work as for a stream, without ~30 SSE chunks to write, and kvchat without ~30 to parse.
   */
  async chatAnswer(
    endpoint: EngineEndpoint,
    request: EngineChatRequest,
    signal: AbortSignal,
  ): Promise<EngineChatAnswer> {
    // `stream_options` only goes with a stream (OpenAI answers 400 otherwise); undefined is not serialised.
    const body: OpenAI.ChatCompletionCreateParamsNonStreaming = {
      ...this.chatBody(request),
      stream: false,
      stream_options: undefined,
    };
    try {
      const { completion, headers } = this.streamsThroughSdk
        ? await this.client(endpoint)
            .chat.completions.create(body, { signal })
            .withResponse()
            .then(({ data, response }) => ({ completion: data, headers: response.headers }))
        : await postJsonWithHeaders<ChatCompletion>({
            url: `${endpoint.baseURL.replace(/\/+$/, '')}/chat/completions`,
            apiKey: this.clients.apiKeyOf(endpoint),
            ...(endpoint.headers ? { headers: endpoint.headers } : {}),
            body,
            signal,
            timeoutMs: endpoint.timeoutMs ?? this.config.INFERENCE_TIMEOUT_MS,
            dispatcher: this.engineAgent,
          }).then(({ json, headers }) => ({ completion: json, headers }));
      return { engineTimings: engineTimingsOf(headers), events: engineEventsOfAnswer(completion) };
    } catch (e) {
      throw this.translate(e, endpoint, 0);
    }
  }

  /**
   * Starts the streamed request: through undici and eventsource-parser (postChatStream, the turn's hot
   * path), or through the SDK where `streamsThroughSdk`.
   */
  protected async openStream(
    endpoint: EngineEndpoint,
    body: OpenAI.ChatCompletionCreateParamsStreaming,
    signal: AbortSignal,
  ): Promise<{
    stream: AsyncIterable<ChatCompletionChunk>;
    headers: Headers;
    forEachChunk?: ChatStreamResponse['forEachChunk'];
  }> {
    if (!this.streamsThroughSdk) {
      const { chunks, headers, forEachChunk } = await postChatStream({
        baseURL: endpoint.baseURL,
        apiKey: this.clients.apiKeyOf(endpoint),
        ...(endpoint.headers ? { headers: endpoint.headers } : {}),
        body,
        signal,
        timeoutMs: endpoint.timeoutMs ?? this.config.INFERENCE_TIMEOUT_MS,
        dispatcher: this.engineAgent,
      });
      return { stream: chunks, headers, forEachChunk };
    }
    const { data, response } = await this.client(endpoint)
      .chat.completions.create(body, { signal })
      .withResponse();
    return { stream: data, headers: response.headers };
  }

  private async *events(
    stream: AsyncIterable<ChatCompletionChunk>,
    endpoint: EngineEndpoint,
  ): AsyncGenerator<EngineChatEvent> {
    const counted = { deltas: 0 };
    try {
      yield* engineEventsOf(stream, counted);
    } catch (e) {
      throw this.translate(e, endpoint, counted.deltas);
    }
  }

  /**
   * `forEachEvent` of a stream read through undici: each chunk's events handed to `onEvent` in the read
   * that brought them. Engine failures are translated as `events` translates them; an error of `onEvent`
   * itself passes unchanged.
   */
  private async forEachEvent(
    forEachChunk: ChatStreamResponse['forEachChunk'],
    endpoint: EngineEndpoint,
    onEvent: (event: EngineChatEvent) => void,
  ): Promise<void> {
    const counted = { deltas: 0 };
    let consumerError: { error: unknown } | undefined;
    const emit = (event: EngineChatEvent): void => {
      try {
        onEvent(event);
      } catch (e) {
        consumerError = { error: e };
        throw e;
      }
    };
    try {
      await forEachChunk((chunk) => eventsOfChunk(chunk, counted, emit));
    } catch (e) {
      if (consumerError) throw consumerError.error;
      throw this.translate(e, endpoint, counted.deltas);
    }
  }

  async tokenize(
    endpoint: EngineEndpoint,
    model: string,
    input: TokenizeInput,
    timeoutMs: number,
  ): Promise<number[]> {
    const body =
      'messages' in input
        ? { model, messages: input.messages, add_generation_prompt: input.addGenerationPrompt ?? true }
        : { model, prompt: input.prompt, add_special_tokens: false };
    let response: TokenizeResponse;
    try {
      // Once or twice per turn (the new user message, the last answer): through undici, not the SDK's
      // fetch, unless this adapter talks to a hosted API (streamsThroughSdk).
      response = this.streamsThroughSdk
        ? await this.client(endpoint).post<TokenizeResponse>(`${rootUrlOf(endpoint.baseURL)}/tokenize`, {
            body,
            timeout: timeoutMs,
            maxRetries: 0,
          })
        : await postJson<TokenizeResponse>({
            url: `${rootUrlOf(endpoint.baseURL)}/tokenize`,
            apiKey: this.clients.apiKeyOf(endpoint),
            ...(endpoint.headers ? { headers: endpoint.headers } : {}),
            body,
            timeoutMs,
            dispatcher: this.engineAgent,
          });
    } catch (e) {
      if (e instanceof APIError && (e.status === 404 || e.status === 405)) {
        throw new EngineTokenizeUnsupported(`The engine at ${endpoint.id} has no /tokenize endpoint.`, {
          replica: endpoint.id,
        });
      }
      throw this.translate(e, endpoint, undefined);
    }
    if (!Array.isArray(response.tokens)) {
      throw new EngineError(`Replica ${endpoint.id} answered /tokenize without tokens.`);
    }
    return response.tokens;
  }

  async models(endpoint: EngineEndpoint, timeoutMs: number): Promise<string[]> {
    try {
      const page = await this.client(endpoint).models.list({ timeout: timeoutMs, maxRetries: 0 });
      return page.data.map((m) => m.id);
    } catch (e) {
      throw this.translate(e, endpoint, undefined);
    }
  }

  async health(endpoint: EngineEndpoint, timeoutMs: number): Promise<void> {
    await this.client(endpoint).models.list({ timeout: timeoutMs, maxRetries: 0 });
  }

  /** Plain `fetch`: the exposition is text, not an OpenAI API the SDK client models. */
  async scrapeMetrics(endpoint: EngineEndpoint, timeoutMs: number): Promise<EngineCacheCounters> {
    const response = await fetch(`${rootUrlOf(endpoint.baseURL)}/metrics`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!response.ok) throw new Error(`GET /metrics answered ${response.status}`);
    return cacheCountersOf(parsePrometheusText(await response.text()));
  }

  /** Maps SDK and network errors to domain errors (see EngineAdapter). */
  protected translate(e: unknown, endpoint: EngineEndpoint, receivedTokens: number | undefined): Error {
    return translateSdkError(e, endpoint, receivedTokens, {
      timeoutMs: endpoint.timeoutMs ?? this.config.INFERENCE_TIMEOUT_MS,
      logger: this.logger,
      isConnectionTimeout: (x) => x instanceof APIConnectionTimeoutError,
      isUserAbort: (x) => x instanceof APIUserAbortError,
      isConnection: (x): x is APIConnectionError => x instanceof APIConnectionError,
      isApiError: (x): x is APIError => x instanceof APIError,
    });
  }
}

/** How to recognise one SDK's error classes (the `openai` and `@anthropic-ai/sdk` packages share the shapes). */
export interface SdkErrorKinds {
  timeoutMs: number;
  logger: Logger;
  isConnectionTimeout(e: unknown): boolean;
  isUserAbort(e: unknown): boolean;
  isConnection(e: unknown): e is { message: string };
  isApiError(e: unknown): e is { status?: number; message: string; headers?: Headers };
}

/** `Retry-After` of an error response, ms (seconds or an HTTP date, RFC 9110 §10.2.3), or undefined. */
export function retryAfterMsOf(headers: Headers | undefined): number | undefined {
  const raw = headers?.get('retry-after-ms') ?? undefined;
  if (raw !== undefined && Number.isFinite(Number(raw))) return Math.max(0, Number(raw));
  const value = headers?.get('retry-after');
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/**
 * SDK and network errors -> the Engine* errors of inference.errors.ts. 429/503 are EngineUnavailable with
 * `status` and `retryAfterMs` (from `Retry-After`) in the extensions; other statuses keep theirs in `status`.
 */
export function translateSdkError(
  e: unknown,
  endpoint: EngineEndpoint,
  receivedTokens: number | undefined,
  kinds: SdkErrorKinds,
): Error {
  if (e instanceof EngineStreamCut || e instanceof EngineError || e instanceof EngineUnavailable) return e;
  const ext = { replica: endpoint.id };
  if (kinds.isConnectionTimeout(e)) {
    return new EngineTimeout(
      `The engine at ${endpoint.id} did not answer within ${kinds.timeoutMs} ms.`,
      ext,
    );
  }
  if (kinds.isUserAbort(e)) return new EngineTimeout(`The request to ${endpoint.id} was aborted.`, ext);
  if (kinds.isConnection(e)) {
    if (receivedTokens !== undefined && receivedTokens > 0) {
      return new EngineStreamCut(
        `The connection to ${endpoint.id} broke after ${receivedTokens} tokens.`,
        ext,
      );
    }
    return new EngineUnreachable(`The engine at ${endpoint.id} is unreachable: ${e.message}`, ext);
  }
  if (kinds.isApiError(e)) {
    const status: number = typeof e.status === 'number' ? e.status : 0;
    if (status === 400 || status === 422)
      return new EngineBadRequest(`The engine rejected the request: ${e.message}`, { ...ext, status });
    if (status === 503 || status === 429 || status === 529) {
      const retryAfterMs = retryAfterMsOf(e.headers);
      return new EngineUnavailable(`The engine at ${endpoint.id} is overloaded or unavailable (${status}).`, {
        ...ext,
        status,
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      });
    }
    return new EngineError(`The engine at ${endpoint.id} failed with ${status || 'an error'}: ${e.message}`, {
      ...ext,
      status,
    });
  }
  // undici reports a connection cut mid-body as `TypeError: terminated` (cause UND_ERR_SOCKET). It may come
  // from another realm (jest's vm), so test the shape, not `instanceof Error`.
  const message =
    typeof (e as { message?: unknown })?.message === 'string' ? (e as { message: string }).message : '';
  if (/terminated|ECONNRESET|socket|premature/i.test(message)) {
    // Before the first delta nothing has reached the caller: another replica may take the request.
    if (receivedTokens === 0) {
      return new EngineUnreachable(
        `The connection to ${endpoint.id} broke before the first token: ${message}`,
        ext,
      );
    }
    return new EngineStreamCut(`The stream from ${endpoint.id} broke: ${message}`, ext);
  }
  kinds.logger.error({ err: e }, 'unexpected engine error');
  return new EngineError(`Unexpected engine error from ${endpoint.id}.`, ext);
}

/**
 * Engine events of a Chat Completions chunk stream (vLLM, OpenAI, and Anthropic after translation), for
 * every choice (`choice` set past the first): content deltas, tool-call fragments, logprobs, the finish
 * reason, usage with cached (and provider cache-write) tokens. `counted.deltas` counts the content and
 * tool-call deltas yielded, for the caller's error mapping.
 */
export async function* engineEventsOf(
  stream: AsyncIterable<ChatCompletionChunk>,
  counted: { deltas: number },
): AsyncGenerator<EngineChatEvent> {
  for await (const chunk of stream) {
    const events: EngineChatEvent[] = [];
    eventsOfChunk(chunk, counted, (event) => events.push(event));
    yield* events;
  }
}

/** The engine events of one chunk, in order, handed to `onEvent` (engineEventsOf, one chunk). */
function eventsOfChunk(
  chunk: ChatCompletionChunk,
  counted: { deltas: number },
  onEvent: (event: EngineChatEvent) => void,
): void {
  if (chunk.usage) onEvent(usageEventOf(chunk.usage));
  for (const choice of chunk.choices) {
    const index = choice.index ?? 0;
    const at = index === 0 ? {} : { choice: index };
    const delta = choice.delta?.content ?? '';
    if (delta.length > 0) {
      counted.deltas++;
      onEvent({ type: 'delta', text: delta, ...at });
    }
    for (const call of choice.delta?.tool_calls ?? []) {
      counted.deltas++;
      onEvent({
        type: 'tool_call',
        ...at,
        index: call.index,
        ...(call.id ? { id: call.id } : {}),
        ...(call.function?.name ? { name: call.function.name } : {}),
        arguments: call.function?.arguments ?? '',
      });
    }
    if (choice.logprobs?.content?.length) {
      onEvent({ type: 'logprobs', ...at, content: choice.logprobs.content });
    }
    if (choice.finish_reason) onEvent({ type: 'finish', reason: choice.finish_reason, ...at });
  }
}

/**
 * The engine events of a non-streamed `chat.completion` (EngineChatAnswer): per choice its text (one
 * `delta`, absent when empty), its function tool calls (one complete fragment each), its logprobs and its
 * finish reason; then usage with cached (and provider cache-write) tokens when the answer has usage.
 */
export function engineEventsOfAnswer(completion: ChatCompletion): EngineChatEvent[] {
  const events: EngineChatEvent[] = [];
  for (const choice of completion.choices ?? []) {
    const index = choice.index ?? 0;
    const at = index === 0 ? {} : { choice: index };
    const text = choice.message?.content ?? '';
    if (text.length > 0) events.push({ type: 'delta', text, ...at });
    for (const [i, call] of (choice.message?.tool_calls ?? []).entries()) {
      if (call.type !== 'function') continue;
      events.push({
        type: 'tool_call',
        ...at,
        index: i,
        ...(call.id ? { id: call.id } : {}),
        ...(call.function.name ? { name: call.function.name } : {}),
        arguments: call.function.arguments ?? '',
      });
    }
    if (choice.logprobs?.content?.length) {
      events.push({ type: 'logprobs', ...at, content: choice.logprobs.content });
    }
    if (choice.finish_reason) events.push({ type: 'finish', reason: choice.finish_reason, ...at });
  }
  if (completion.usage) events.push(usageEventOf(completion.usage));
  return events;
}

/** The `usage` event of an OpenAI usage object: prompt, completion, cached and provider cache-write tokens. */
function usageEventOf(usage: NonNullable<ChatCompletion['usage']>): EngineChatEvent {
  const cached = usage.prompt_tokens_details?.cached_tokens;
  const written = (usage as { cache_creation_input_tokens?: number }).cache_creation_input_tokens;
  return {
    type: 'usage',
    usage: {
      promptTokens: usage.prompt_tokens,
      completionTokens: usage.completion_tokens,
      ...(cached !== undefined && cached !== null ? { cachedTokens: cached } : {}),
      ...(written !== undefined ? { cacheWriteTokens: written } : {}),
    },
  };
}

/** The engine's own timings from its response headers (the simulator's `x-kvchat-engine-*`), ms. */
function engineTimingsOf(headers: Headers): EngineChatAnswer['engineTimings'] {
  const engineTtftMs = numericHeader(headers, 'x-kvchat-engine-ttft-ms');
  const engineModelPrefillMs = numericHeader(headers, 'x-kvchat-engine-model-prefill-ms');
  return {
    ...(engineTtftMs !== undefined ? { engineTtftMs } : {}),
    ...(engineModelPrefillMs !== undefined ? { engineModelPrefillMs } : {}),
  };
}

/**
 * The streamed Chat Completions body of an engine request (no vendor extensions): the client's other
 * OpenAI and vendor fields (`request.extra`: tools, tool_choice, response_format, n, logprobs, user, ...)
 * first, then kvchat's own fields, which always win.
 */
export function openAiChatBody(request: EngineChatRequest): OpenAI.ChatCompletionCreateParamsStreaming {
  return {
    ...request.extra,
    model: request.model,
    messages: request.messages.map(toOpenAiMessage),
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: request.maxTokens,
    ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
    ...request.sampling,
  };
}

/** A numeric response header (the simulator reports its own timings this way), or undefined. */
function numericHeader(headers: Headers, name: string): number | undefined {
  const raw = headers.get(name);
  if (raw === null) return undefined;
  const value = Number(raw);
  return Number.isFinite(value) ? value : undefined;
}
