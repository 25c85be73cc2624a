import type { ChatRequest, ChatUsage, TokenizeInput, TokenLogprob, WireChatMessage } from './inference.types';

/**
 * Injection token of the engine adapter: the one object that speaks an engine's wire protocol.
 * InferenceService (replica choice, failover, TTFT), EndpointRouter (health probes) and
 * EngineMetricsService (scrapes) reach engines only through it. Bound in inference.module.ts.
 */
export const ENGINE_ADAPTER = Symbol('ENGINE_ADAPTER');

/** One engine endpoint (a replica) as an adapter addresses it. */
export interface EngineEndpoint {
  /** Stable id (the base URL). */
  id: string;
  /** OpenAI-style base URL, e.g. `http://vllm-0:8000/v1` (Anthropic: `https://api.anthropic.com`). */
  baseURL: string;
  /** API key of a catalogue deployment (from its `apiKeyEnv`); unset = INFERENCE_API_KEY. */
  apiKey?: string;
  /** Whole-request timeout of a catalogue deployment, ms; unset = INFERENCE_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Extra headers of a catalogue deployment. */
  headers?: Record<string, string>;
}

/** One chat completion as sent to an engine (the adapter maps it onto its wire format). */
export interface EngineChatRequest {
  model: string;
  messages: WireChatMessage[];
  /** Completion budget, tokens. */
  maxTokens: number;
  temperature?: number;
  sampling?: ChatRequest['sampling'];
  /** OpenAI fields beyond the above, as the client sent them (ChatRequest.extra); the adapter maps what it supports. */
  extra?: ChatRequest['extra'];
  /** Server-derived per-tenant salt for the engine's prefix cache (vLLM `cache_salt`); never client-supplied. */
  cacheSalt?: string;
  /**
   * Key that groups requests sharing a prompt prefix for a provider's prompt cache (OpenAI
   * `prompt_cache_key`): the conversation, or the tenant for stateless calls; derived by the server.
   */
  promptCacheKey?: string;
}

/**
 * What a chat stream yields, in order: deltas, a finish reason, usage (any order of the last two).
 * `choice` is the OpenAI choice index (absent = 0; several only with `n` > 1); `tool_call` is a fragment
 * of a tool call (`id` and `name` on its first fragment, `arguments` text appended); `logprobs` are the
 * log probabilities of the tokens of the delta before it.
 */
export type EngineChatEvent =
  | { type: 'delta'; text: string; choice?: number }
  | { type: 'tool_call'; choice?: number; index: number; id?: string; name?: string; arguments: string }
  | { type: 'logprobs'; choice?: number; content: TokenLogprob[] }
  | { type: 'finish'; reason: string; choice?: number }
  | { type: 'usage'; usage: Partial<ChatUsage> };

/** An engine's open chat stream. */
export interface EngineChatStream {
  /** The engine's own timings when it reports them (the simulator sends headers), ms. */
  engineTimings: { engineTtftMs?: number; engineModelPrefillMs?: number };
  events: AsyncIterable<EngineChatEvent>;
  /**
   * Where the adapter can: the same events pushed to `onEvent` as they arrive, with no promise per event
   * (a long answer is hundreds of them). Resolves when the stream ends; rejects as iterating `events`
   * would, and with `onEvent`'s own error, unchanged. A stream is read one way only: this or `events`.
   */
  forEachEvent?(onEvent: (event: EngineChatEvent) => void): Promise<void>;
}

/**
 * An engine's whole answer to a non-streamed request, as the events its stream would have carried: per
 * choice its whole text (one `delta`), its tool calls (one complete `tool_call` each), its logprobs and
 * its finish reason; then usage.
 */
export interface EngineChatAnswer {
  /** The engine's own timings when it reports them (the simulator sends headers), ms. */
  engineTimings: { engineTtftMs?: number; engineModelPrefillMs?: number };
  events: EngineChatEvent[];
}

/** Prefix-cache counters of one replica since it started, in tokens. */
export interface EngineCacheCounters {
  /** vLLM `vllm:prefix_cache_queries`: prompt tokens looked up in the GPU prefix cache. */
  prefixCacheQueriedTokens: number;
  /** vLLM `vllm:prefix_cache_hits`: of those, tokens found in the GPU prefix cache. */
  prefixCacheHitTokens: number;
  /** hits / queries (0..1), null before the first query. */
  prefixCacheHitRate: number | null;
  /** vLLM `vllm:prompt_tokens`: prompt tokens processed. */
  promptTokens: number | null;
  /** LMCache counters, when the replica runs the LMCache connector. */
  lmcache: {
    /** `lmcache:num_requested_tokens`: tokens asked of LMCache for retrieval. */
    requestedTokens: number;
    /** `lmcache:num_hit_tokens`: tokens LMCache served (CPU, disk or remote tier). */
    hitTokens: number;
    /** hitTokens / requestedTokens (0..1), null before the first request. */
    hitRate: number | null;
    /** `lmcache:num_stored_tokens`: tokens LMCache stored. */
    storedTokens: number | null;
  } | null;
}

/**
 * How kvchat talks to one kind of engine. An adapter is stateless about routing: it is handed the
 * endpoint of the replica InferenceService chose, and maps the engine's failures to the domain errors
 * of inference.errors.ts so that failover and status codes work the same for every engine:
 * - `EngineUnreachable` (a connection could not be made; the caller marks the replica unhealthy and
 *   tries another), `EngineUnavailable` (overloaded: 429/503), `EngineBadRequest` (400/422),
 *   `EngineTimeout`, `EngineStreamCut` (the stream broke after deltas), `EngineError` (anything else).
 * Cancellation: every call stops when its `signal` fires (a chat stream ends early without `finish`, or
 * rejects); the caller decides what the abort means.
 */
export interface EngineAdapter {
  /** Name for logs and docs, e.g. `vllm`. */
  readonly name: string;

  /**
   * Starts one streamed chat completion on `endpoint`. Resolves once the engine accepted the request
   * (headers received); the events then arrive as the engine produces them. The caller measures TTFT
   * at the first `delta`, and treats a stream without a `finish` event as cut.
   */
  chatStream(
    endpoint: EngineEndpoint,
    request: EngineChatRequest,
    signal: AbortSignal,
  ): Promise<EngineChatStream>;

  /**
   * One non-streamed chat completion on `endpoint` (`stream: false`: one JSON answer): resolves once the
   * engine has finished the whole answer. Optional: InferenceService asks for it when the caller does not
   * stream (`ChatRequest.wholeAnswer`), and streams from adapters without it (Anthropic). Fails as
   * `chatStream` does; a connection broken before the answer is EngineUnreachable (nothing reached the
   * caller, so another replica may take the request).
   */
  chatAnswer?(
    endpoint: EngineEndpoint,
    request: EngineChatRequest,
    signal: AbortSignal,
  ): Promise<EngineChatAnswer>;

  /**
   * Token ids from the engine's own tokenizer (`prompt` without special tokens; `messages` through its
   * chat template). @throws EngineTokenizeUnsupported when the engine cannot tokenize
   */
  tokenize(
    endpoint: EngineEndpoint,
    model: string,
    input: TokenizeInput,
    timeoutMs: number,
  ): Promise<number[]>;

  /** Ids of the models the endpoint serves, in the engine's order. */
  models(endpoint: EngineEndpoint, timeoutMs: number): Promise<string[]>;

  /** Resolves when the endpoint can serve requests; rejects (any error) when it cannot. */
  health(endpoint: EngineEndpoint, timeoutMs: number): Promise<void>;

  /**
   * The endpoint's prefix-cache counters, read from whatever the engine exposes (vLLM: Prometheus
   * `/metrics`). Rejects when it exposes none or cannot be reached.
   */
  scrapeMetrics(endpoint: EngineEndpoint, timeoutMs: number): Promise<EngineCacheCounters>;
}
