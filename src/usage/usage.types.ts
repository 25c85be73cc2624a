/** Which layer answered a request. */
export type CacheLayer = 'exact' | 'semantic' | 'engine-prefix' | 'none';

/** What kind of request a usage record is for. */
export type UsageEndpoint = 'turn' | 'chat.completions' | 'embeddings' | 'ingestion';

/** The key id recorded for work no API key asked for. */
export const NO_KEY = '00000000-0000-0000-0000-000000000000';

/**
 * What a billable request reports to the ledger (`UsageRecorder.record`). Token counts are the
 * tokens the engine or provider processed for this request — 0 for a response-cache hit, whose
 * `replaced` says what the miss it replaced cost.
 */
export interface UsageInput {
  /** When the request finished; default now. */
  occurredAt?: Date;
  tenantId: string;
  /** The API key; null or absent for work no key asked for. */
  keyId?: string | null;
  requestId: string;
  conversationId?: string | null;
  endpoint: UsageEndpoint;
  model: string;
  provider?: string | null;
  /** Deployment or replica that answered. */
  deployment?: string | null;
  promptTokens: number;
  /** Prompt tokens the engine (prefix cache) or provider (prompt caching) reported cached. */
  cachedTokens: number;
  completionTokens: number;
  /**
   * `exact` / `semantic` for a response-cache hit; otherwise derived: `engine-prefix` when
   * cachedTokens > 0, else `none`.
   */
  cacheLayer?: CacheLayer;
  /** For a response-cache hit: the tokens of the answer it replayed, priced as the miss it replaced. */
  replaced?: { promptTokens: number; completionTokens: number } | null;
  /** Whole request, ms. */
  latencyMs: number;
  /** Time to first token, ms. */
  ttftMs?: number | null;
}

/**
 * One ledger record as queued and stored (dates as ISO strings, USD rounded to 1e-9). Returned by
 * `UsageRecorder.record` so the caller can charge `cost` to spend budgets and report savings.
 */
export interface UsageRow {
  id: string;
  occurredAt: string;
  tenantId: string;
  keyId: string;
  requestId: string;
  conversationId: string | null;
  endpoint: UsageEndpoint;
  model: string;
  provider: string | null;
  deployment: string | null;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  cacheLayer: CacheLayer;
  avoidedTokensExact: number;
  avoidedCostExact: number;
  avoidedTokensSemantic: number;
  avoidedCostSemantic: number;
  avoidedTokensPrefix: number;
  avoidedCostPrefix: number;
  /** USD. */
  cost: number;
  /** USD saved by the cache layers (exact + semantic + prefix). */
  costAvoided: number;
  latencyMs: number;
  ttftMs: number | null;
}
