import type { TokenIds } from './block-hash';
import type { ProviderAttempt } from './deployment-guards';

/** One chat message as sent to the engine. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** A tool call of an assistant message (OpenAI `tool_calls[]`); `arguments` is JSON text. */
export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/**
 * A message of the OpenAI wire format: a ChatMessage, or a tool's answer (`role: 'tool'` with
 * `tool_call_id`), or an assistant message with `tool_calls`. Only the stateless OpenAI-compatible
 * endpoint sends the wider kinds; turns send ChatMessages.
 */
export interface WireChatMessage {
  role: ChatMessage['role'] | 'tool';
  content: string;
  name?: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
}

/** One output token's log probability (OpenAI `logprobs.content[]`), natural log. */
export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
  top_logprobs: { token: string; logprob: number; bytes: number[] | null }[];
}

/** One choice of a completed answer (OpenAI `choices[]`). */
export interface ChatChoice {
  index: number;
  content: string;
  toolCalls: ToolCall[];
  /** Null unless the request asked for `logprobs`. */
  logprobs: TokenLogprob[] | null;
  finishReason: string;
}

/** A streamed piece of one choice, for callers that relay every choice (the OpenAI-compatible endpoint). */
export type ChoiceDelta =
  | { type: 'content'; choice: number; text: string; logprobs?: TokenLogprob[] }
  | { type: 'tool_call'; choice: number; index: number; id?: string; name?: string; arguments: string }
  | { type: 'finish'; choice: number; reason: string };

/** A chat request to the engine. */
export interface ChatRequest {
  /** Public model name of the catalogue; unset = the default model (the catalogue's first). */
  model?: string;
  messages: WireChatMessage[];
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
  /**
   * OpenAI Chat Completions fields beyond the above (`tools`, `tool_choice`, `parallel_tool_calls`,
   * `response_format`, `n`, `logprobs`, `top_logprobs`, `user`, `metadata`, `store`, `reasoning_effort`,
   * vendor fields), as the client sent them; the adapter passes on what its upstream supports.
   */
  extra?: Readonly<Record<string, unknown>>;
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
  promptTokenIds?: TokenIds;
  /**
   * `blockHashChain(promptTokenIds, INFERENCE_BLOCK_SIZE, cacheSalt)` when the caller already computed it
   * (a turn hashes its prompt once), so prefix routing does not hash the prompt again.
   */
  promptBlockHashes?: readonly string[];
  /** Called with each content delta of the first choice as it arrives (streaming). */
  onToken?: (delta: string) => void;
  /** Called with every piece of every choice (content, tool-call fragments, finish) as it arrives. */
  onChoiceDelta?: (delta: ChoiceDelta) => void;
  /**
   * Called once, just before the first piece of the answer reaches `onToken` / `onChoiceDelta`: the
   * target answering and the attempts before it (e.g. to set response headers before a stream starts).
   */
  onProviderRoute?: (route: ProviderRoute) => void;
  /** Aborts the engine request (client disconnected). */
  signal?: AbortSignal;
  /**
   * The caller reads the answer whole (a client that does not stream): the engine is asked for one JSON
   * answer (`stream: false`) where its adapter can (`EngineAdapter.chatAnswer`; Anthropic streams). The
   * callbacks then get the whole text at once, `timings.ttftMs` is the time to the whole answer, and the
   * whole answer is bounded by INFERENCE_TIMEOUT_MS (or the first-token deadline, if longer).
   */
  wholeAnswer?: boolean;
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
  /** The first choice's text. */
  content: string;
  finishReason: string;
  /** Every choice, with tool calls and logprobs (set by InferenceService; absent from cache replays). */
  choices?: ChatChoice[];
  /** The public model (the catalogue's name). */
  model: string;
  /** The catalogue target that answered and the attempts before it. */
  provider?: ProviderRoute;
  usage: ChatUsage;
  /**
   * True when the engine answered in one JSON body (ChatRequest.wholeAnswer): `timings.ttftMs` is the time
   * to the whole answer and no inter-token latency was measured (`timings.itlMs` 0).
   */
  wholeAnswer?: boolean;
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
