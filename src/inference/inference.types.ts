/** One chat message as sent to the engine. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** A chat request to the engine. */
export interface ChatRequest {
  messages: ChatMessage[];
  /** Completion budget, tokens. */
  maxTokens?: number;
  temperature?: number;
  /** Server-derived per-tenant salt (vLLM `cache_salt`); never client-supplied. */
  cacheSalt?: string;
  /** Key for replica affinity (the conversation id). */
  routingKey?: string;
  /** Prompt token ids when known, for prefix-aware routing. */
  promptTokenIds?: number[];
  /** Called with each content delta as it arrives (streaming). */
  onToken?: (delta: string) => void;
  /** Aborts the engine request (client disconnected). */
  signal?: AbortSignal;
}

/** Usage of one engine call, in tokens. */
export interface ChatUsage {
  promptTokens: number;
  completionTokens: number;
  /** `usage.prompt_tokens_details.cached_tokens` (0 when the engine does not report it). */
  cachedTokens: number;
}

/** Result of a complete engine call. */
export interface ChatResult {
  content: string;
  finishReason: string;
  model: string;
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
    /** The engine's own TTFT when it reports one (simulator header), ms. */
    engineTtftMs?: number;
  };
}
