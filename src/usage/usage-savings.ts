import type { UsageRow } from './usage.types';

/**
 * What each cache layer saved one request, as a turn's answer reports it (`assistantMessage.savings`)
 * and `GET /v1/cache/stats` sums it. Tokens are tokens; costs are USD from the ledger's prices (0 for a
 * model without a price). Derived from the request's ledger row, so it always equals what billing sees.
 */
export interface UsageSavings {
  /** What this request cost, USD. */
  cost: number;
  /** USD the cache layers saved (response cache + engine prefix / provider prompt caching). */
  costAvoided: number;
  /** Which layer answered: `exact` / `semantic` (response cache), `engine-prefix`, or `none`. */
  cacheLayer: UsageRow['cacheLayer'];
  /** A response-cache hit: the tokens and cost of the engine call it replaced (0 on a miss). */
  responseCache: { tokens: number; cost: number };
  /** Prompt tokens a self-hosted engine served from its prefix cache, and the prefill cost spared. */
  enginePrefix: { tokens: number; cost: number };
  /** Prompt tokens a hosted provider reported cached (prompt caching; 0 for a self-hosted engine). */
  providerCachedTokens: number;
}

/** Providers whose cached tokens come from an engine kvchat runs (its prefix cache). */
const SELF_HOSTED = new Set(['vllm', 'cache']);

/** The savings of one ledger row. */
export function savingsOf(row: UsageRow): UsageSavings {
  const hosted = row.provider !== null && !SELF_HOSTED.has(row.provider);
  return {
    cost: row.cost,
    costAvoided: row.costAvoided,
    cacheLayer: row.cacheLayer,
    responseCache: {
      tokens: row.avoidedTokensExact + row.avoidedTokensSemantic,
      cost: usd(row.avoidedCostExact + row.avoidedCostSemantic),
    },
    enginePrefix: hosted
      ? { tokens: 0, cost: 0 }
      : { tokens: row.avoidedTokensPrefix, cost: row.avoidedCostPrefix },
    providerCachedTokens: hosted ? row.cachedTokens : 0,
  };
}

const usd = (x: number): number => Math.round(x * 1e9) / 1e9;
