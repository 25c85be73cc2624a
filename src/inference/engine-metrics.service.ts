import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { InferenceConfig } from '../config/inference.config';
import { EndpointRouter, type Replica } from './endpoint-router';
import { type PromSample, parsePrometheusText, sumCounter } from './prometheus-text';

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

/** The latest scrape of one replica's `/metrics`. */
export interface ReplicaMetricsSnapshot {
  replica: string;
  healthy: boolean;
  /** ISO time of the last successful scrape, null if none yet. */
  scrapedAt: string | null;
  /** Why the last scrape failed, if it did. */
  error?: string;
  counters: EngineCacheCounters | null;
}

/** Reads the cache counters kvchat uses from a replica's exposition. */
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
 * Scrapes each replica's Prometheus `/metrics` (vLLM prefix-cache and LMCache counters) every
 * ENGINE_METRICS_SCRAPE_SECONDS, and on demand, so the backend's cache stats show what the engines
 * themselves counted next to what the backend measured per turn. Plain `fetch`: the exposition is
 * text, not an OpenAI API the SDK client models.
 */
@Injectable()
export class EngineMetricsService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(EngineMetricsService.name);
  private readonly latest = new Map<string, ReplicaMetricsSnapshot>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly router: EndpointRouter,
    private readonly config: InferenceConfig,
  ) {}

  onModuleInit(): void {
    const seconds = this.config.ENGINE_METRICS_SCRAPE_SECONDS;
    if (seconds <= 0) return;
    this.timer = setInterval(() => void this.scrapeAll(), seconds * 1000);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** Scrapes every replica now and returns the snapshots. Never throws: failures are recorded per replica. */
  async scrapeAll(timeoutMs = 2000): Promise<ReplicaMetricsSnapshot[]> {
    return Promise.all(this.router.replicas.map((r) => this.scrape(r, timeoutMs)));
  }

  /** The latest snapshot of every replica (scraping those never scraped). */
  async snapshots(): Promise<ReplicaMetricsSnapshot[]> {
    return Promise.all(
      this.router.replicas.map(async (r) => {
        const known = this.latest.get(r.id);
        return known?.scrapedAt ? { ...known, healthy: r.healthy } : this.scrape(r);
      }),
    );
  }

  private async scrape(replica: Replica, timeoutMs = 2000): Promise<ReplicaMetricsSnapshot> {
    const previous = this.latest.get(replica.id);
    let snapshot: ReplicaMetricsSnapshot;
    try {
      const response = await fetch(`${replica.rootURL}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
      if (!response.ok) throw new Error(`GET /metrics answered ${response.status}`);
      const counters = cacheCountersOf(parsePrometheusText(await response.text()));
      snapshot = {
        replica: replica.id,
        healthy: replica.healthy,
        scrapedAt: new Date().toISOString(),
        counters,
      };
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      if (!previous?.error) this.logger.warn(`could not scrape ${replica.rootURL}/metrics: ${error}`);
      snapshot = {
        replica: replica.id,
        healthy: replica.healthy,
        scrapedAt: previous?.scrapedAt ?? null,
        error,
        counters: previous?.counters ?? null,
      };
    }
    this.latest.set(replica.id, snapshot);
    return snapshot;
  }
}
