import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { InferenceConfig } from '../config/inference.config';
import { EndpointRouter, type Replica } from './endpoint-router';
import { ENGINE_ADAPTER, type EngineAdapter, type EngineCacheCounters } from './engine-adapter';

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

/**
 * Scrapes each replica's prefix-cache counters through the EngineAdapter (vLLM: Prometheus `/metrics`,
 * prefix-cache and LMCache counters) every ENGINE_METRICS_SCRAPE_SECONDS, and on demand, so the
 * backend's cache stats show what the engines themselves counted next to what the backend measured per turn.
 */
@Injectable()
export class EngineMetricsService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(EngineMetricsService.name);
  private readonly latest = new Map<string, ReplicaMetricsSnapshot>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly router: EndpointRouter,
    private readonly config: InferenceConfig,
    @Inject(ENGINE_ADAPTER) private readonly engine: EngineAdapter,
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
      const counters = await this.engine.scrapeMetrics(replica, timeoutMs);
      snapshot = {
        replica: replica.id,
        healthy: replica.healthy,
        scrapedAt: new Date().toISOString(),
        counters,
      };
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      if (!previous?.error) this.logger.warn(`could not scrape the metrics of ${replica.id}: ${error}`);
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
