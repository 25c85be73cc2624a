import type { ProviderAttempt } from './deployment-guards';

/** One chat message as sent to the engine. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** A chat request to the engine. */
export interface ChatRequest {
  /** Public model name of the catalogue; unset = the default model (the catalogue's first). */
  model?: string;
  messages: ChatMessage[];
  /** Completion budget, tokens. */
  maxTokens?: number;
  temperature?: number;
  /**
   * Other sampling fields of the OpenAI chat request, sent as given (`top_p`, `stop`, `seed`,
   * `presence_penalty`, `frequency_penalty`); the OpenAI-compatible endpoint passes them through.
   */
  sampling?: {
    top_p?: number;
    stop?: string | string[];
    seed?: number;
    presence_penalty?: number;
    frequency_penalty?: number;
  };
  /** Server-derived per-tenant salt (vLLM `cache_salt`); never client-supplied. */
  cacheSalt?: string;
  /** Key for replica affinity (the conversation id). */
  routingKey?: string;
  /**
   * Provider prompt-cache key (OpenAI `prompt_cache_key`); unset = `routingKey`. Server-derived: the
   * conversation, or the tenant for stateless calls.
   */
  promptCacheKey?: string;
  /** Prompt token ids when known, for prefix-aware routing. */
  promptTokenIds?: readonly number[];
  /**
   * `blockHashChain(promptTokenIds, INFERENCE_BLOCK_SIZE, cacheSalt)` when the caller already computed it
   * (a turn hashes its prompt once), so prefix routing does not hash the prompt again.
   */
  promptBlockHashes?: readonly string[];
  /** Called with each content delta as it arrives (streaming). */
  onToken?: (delta: string) => void;
  /**
   * Called once, just before the first delta reaches `onToken`: the target answering and the attempts
   * before it (e.g. to set response headers before a stream starts).
   */
  onProviderRoute?: (route: ProviderRoute) => void;
  /** Aborts the engine request (client disconnected). */
  signal?: AbortSignal;
}

/** Usage of one engine call, in tokens. */
export interface ChatUsage {
  promptTokens: number;
  completionTokens: number;
  /**
   * Prompt tokens served from a cache: vLLM/OpenAI `usage.prompt_tokens_details.cached_tokens`, Anthropic
   * `cache_read_input_tokens` (0 when the engine does not report it).
   */
  cachedTokens: number;
  /** Prompt tokens written to a provider's prompt cache (Anthropic `cache_creation_input_tokens`), when reported. */
  cacheWriteTokens?: number;
}

/** Which catalogue target answered a chat, and every target tried before it. */
export interface ProviderRoute {
  /** The public model asked for. */
  model: string;
  /** The deployment that answered (catalogue id; `engine` for the default catalogue). */
  deployment: string;
  /** Its provider: `vllm`, `openai`, `anthropic`. */
  provider: string;
  /** The model name the upstream knows. */
  upstreamModel: string;
  /** Every target in order: skipped (breaker open, rpm/tpm), failed (429, 5xx, ...), and the one that answered. */
  attempts: ProviderAttempt[];
}

/** Result of a complete engine call. */
export interface ChatResult {
  content: string;
  finishReason: string;
  /** The public model (the catalogue's name). */
  model: string;
  /** The catalogue target that answered and the attempts before it. */
  provider?: ProviderRoute;
  usage: ChatUsage;
  /** Replica id (its base URL). */
  replica: string;
  timings: {
    /** Request start to the first content token, ms (measured by the backend). */
    ttftMs: number;
    /** Request start to the last byte, ms. */
    totalMs: number;
    /** Mean inter-token latency over the stream, ms (0 with fewer than two tokens). */
    itlMs: number;
    /** The engine's own TTFT when it reports one (simulator header), wall-clock ms. */
    engineTtftMs?: number;
    /**
     * The engine's modelled prefill time when it reports one (simulator header
     * `x-kvchat-engine-model-prefill-ms`): overhead + uncached tokens x prefill cost + loaded tokens x
     * load cost, before the simulator's time scale and without queueing, ms.
     */
    engineModelPrefillMs?: number;
  };
  /** How the replica was chosen. */
  routing?: {
    policy: string;
    reason: string;
    /** `prefix` policy: prompt tokens the router believed the replica held. */
    matchedTokens?: number;
    /** 1 + replicas tried before this one (unreachable ones are skipped and retried elsewhere). */
    attempts: number;
  };
}

/** What to tokenize with the engine's tokenizer: plain text, or chat messages through its chat template. */
export type TokenizeInput = { prompt: string } | { messages: ChatMessage[]; addGenerationPrompt?: boolean };
