import { Inject, Injectable, Logger } from '@nestjs/common';
import { RESPONSE_CACHE_STORE, type ResponseCacheStore } from './response-cache.store';

/** Events the response cache counts, per tenant. */
export type ResponseCacheEvent =
  | 'lookup'
  | 'hit:exact'
  | 'hit:semantic'
  | 'miss'
  | `guard:${string}`
  | 'verifier:rejected'
  | 'store'
  | 'evict'
  | 'singleflight:wait'
  | 'skip';

/** Counters of the response cache (one tenant, or summed over tenants). */
export interface ResponseCacheCounts {
  /** Lookups made (requests in mode `default` or `no-store`). */
  lookups: number;
  hits: { exact: number; semantic: number };
  misses: number;
  /** (exact + semantic hits) / lookups, 0 when there were none. */
  hitRate: number;
  /** Semantic candidates rejected, by the guard that rejected them (false hits prevented). */
  guardRejections: Record<string, number>;
  /** Candidates that passed the guards but not the verifier. */
  verifierRejections: number;
  /** Answers stored. */
  stores: number;
  /** Entries removed by the size bound, expiry or replacement. */
  evictions: number;
  /** Identical misses that waited for an engine call already in flight (single flight). */
  singleFlightWaits: number;
  /** Requests that skipped the lookup (`no-cache`, `bypass`). */
  skipped: number;
}

/**
 * Hit/miss/guard counters, kept by the ResponseCacheStore (Redis: a hash per tenant) so that every API
 * replica adds to the same figures. Counting never fails a request: store errors are logged and dropped.
 */
@Injectable()
export class ResponseCacheStats {
  private readonly logger = new Logger(ResponseCacheStats.name);

  constructor(@Inject(RESPONSE_CACHE_STORE) private readonly store: ResponseCacheStore) {}

  /** Adds `by` to a tenant's counter (fire and forget). */
  count(tenantId: string, event: ResponseCacheEvent, by = 1): void {
    if (by === 0) return;
    this.store.count(tenantId, event, by).catch((e: unknown) => {
      this.logger.warn(`cannot count ${event}: ${e instanceof Error ? e.message : String(e)}`);
    });
  }

  /** A tenant's counters. */
  async forTenant(tenantId: string): Promise<ResponseCacheCounts> {
    return toCounts(await this.store.counters(tenantId));
  }

  /** Counters summed over every tenant (admin). */
  async forAllTenants(): Promise<ResponseCacheCounts> {
    return toCounts(await this.store.counters('*'));
  }
}

function toCounts(raw: Record<string, number>): ResponseCacheCounts {
  const n = (field: string): number => raw[field] ?? 0;
  const guardRejections: Record<string, number> = {};
  for (const [field, value] of Object.entries(raw)) {
    if (field.startsWith('guard:')) guardRejections[field.slice('guard:'.length)] = Number(value);
  }
  const lookups = n('lookup');
  const hits = { exact: n('hit:exact'), semantic: n('hit:semantic') };
  return {
    lookups,
    hits,
    misses: n('miss'),
    hitRate: lookups > 0 ? (hits.exact + hits.semantic) / lookups : 0,
    guardRejections,
    verifierRejections: n('verifier:rejected'),
    stores: n('store'),
    evictions: n('evict'),
    singleFlightWaits: n('singleflight:wait'),
    skipped: n('skip'),
  };
}
