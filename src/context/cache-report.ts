/** A turn's cache report: what each cache layer did (stored on the assistant message as `cache`). */
export interface MessageCacheReport {
  /** Engine-reported cached prompt tokens. */
  cachedTokens: number;
  /** cachedTokens / promptTokens (0..1). */
  prefixReuse: number;
  /** Prompt tokens the engine reported (`usage.prompt_tokens`). */
  promptTokens?: number;
  /** Backend's own figure: longest common block-aligned token prefix with the previous prompt, in tokens. */
  backendReusableTokens?: number;
  /** backendReusableTokens / promptTokens (0..1). */
  backendPrefixReuse?: number;
  /** Response cache result, when the response cache was consulted. */
  response?: {
    hit: boolean;
    type?: 'exact' | 'semantic';
    similarity?: number;
    entryId?: string;
    guard?: string;
  };
  [extension: string]: unknown;
}
