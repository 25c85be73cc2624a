import { Injectable } from '@nestjs/common';
import { EngineMetricsService, type ReplicaMetricsSnapshot } from '../inference/engine-metrics.service';
import { CacheStatsSection, type CacheStatsScope, type CacheStatsSource } from './cache-stats.types';

/** `layers.engine` of the cache stats: what each replica's own `/metrics` counted (every tenant together). */
export interface EngineStats {
  replicas: ReplicaMetricsSnapshot[];
  totals: {
    /** vLLM prefix cache: tokens queried and found, summed over replicas. */
    prefixCacheQueriedTokens: number;
    prefixCacheHitTokens: number;
    prefixCacheHitRate: number | null;
    /** LMCache: tokens requested and served, summed over replicas that run it. */
    lmcacheRequestedTokens: number;
    lmcacheHitTokens: number;
    lmcacheHitRate: number | null;
  };
}

/**
 * Engine-side counters scraped from every replica. They mix all tenants, so they are shown only in
 * the global scope (admin keys).
 */
@Injectable()
@CacheStatsSection()
export class EngineStatsSource implements CacheStatsSource {
  readonly section = 'engine';

  constructor(private readonly metrics: EngineMetricsService) {}

  async collect(scope: CacheStatsScope): Promise<EngineStats | undefined> {
    if (scope.kind !== 'global' || scope.conversationId) return undefined;
    const replicas = await this.metrics.scrapeAll();
    let queried = 0;
    let hits = 0;
    let requested = 0;
    let lmHits = 0;
    for (const r of replicas) {
      queried += r.counters?.prefixCacheQueriedTokens ?? 0;
      hits += r.counters?.prefixCacheHitTokens ?? 0;
      requested += r.counters?.lmcache?.requestedTokens ?? 0;
      lmHits += r.counters?.lmcache?.hitTokens ?? 0;
    }
    return {
      replicas,
      totals: {
        prefixCacheQueriedTokens: queried,
        prefixCacheHitTokens: hits,
        prefixCacheHitRate: queried > 0 ? hits / queried : null,
        lmcacheRequestedTokens: requested,
        lmcacheHitTokens: lmHits,
        lmcacheHitRate: requested > 0 ? lmHits / requested : null,
      },
    };
  }
}
