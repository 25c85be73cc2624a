import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { DeploymentGuards } from '../inference/deployment-guards';
import { EndpointRouter } from '../inference/endpoint-router';
import { EngineMetricsService, type ReplicaMetricsSnapshot } from '../inference/engine-metrics.service';
import { QueueStatsService, type QueueStats } from '../queues/queue-stats.service';
import { MetricsService } from './metrics.service';

/** Job states reported per queue in `kvchat_queue_jobs{queue,state}`. */
const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
/** Longest a scrape waits for one queue's counts, ms; a slow Redis must not hang /metrics. */
const QUEUE_STATS_TIMEOUT_MS = 1000;

/**
 * Gauges read at scrape time from the rest of the app: engine replica health and in-flight
 * requests (the EndpointRouter's view), the engines' own prefix-cache and LMCache counters (the
 * EngineMetricsService's last scrape of each replica), and Bull queue depth, failed jobs and stalls
 * (QueueStatsService: every queue any module registered). Nothing here is imported by feature
 * modules; it only reads their state.
 */
@Injectable()
export class FleetMetricsCollector implements OnApplicationBootstrap {
  private readonly logger = new Logger(FleetMetricsCollector.name);
  private router?: EndpointRouter;
  private engineMetrics?: EngineMetricsService;
  private queueStats?: QueueStatsService;
  private guards?: DeploymentGuards;

  constructor(
    private readonly metrics: MetricsService,
    private readonly moduleRef: ModuleRef,
  ) {
    this.metrics.gauge({
      name: 'kvchat_replica_healthy',
      help: 'Engine replica health as the router sees it (1 healthy, 0 skipped until a probe succeeds).',
      labelNames: ['replica'],
      collect: (gauge) => {
        gauge.reset();
        for (const r of this.router?.replicas ?? [])
          gauge.set({ replica: this.metrics.replicaLabel(r.id) }, r.healthy ? 1 : 0);
      },
    });
    this.metrics.gauge({
      name: 'kvchat_replica_in_flight',
      help: 'Engine requests in flight on each replica.',
      labelNames: ['replica'],
      collect: (gauge) => {
        gauge.reset();
        for (const r of this.router?.replicas ?? [])
          gauge.set({ replica: this.metrics.replicaLabel(r.id) }, r.inFlight);
      },
    });
    // The engines' own cache counters (vLLM prefix cache, LMCache), as last scraped from each replica's
    // /metrics by EngineMetricsService (every ENGINE_METRICS_SCRAPE_SECONDS). They are counters on the
    // replica (reset when it restarts): use rate()/increase() on them.
    const engineCounters: {
      name: string;
      help: string;
      read: (s: ReplicaMetricsSnapshot) => number | undefined;
    }[] = [
      {
        name: 'kvchat_engine_prefix_cache_queried_tokens',
        help: 'vllm:prefix_cache_queries of each replica at its last scrape: prompt tokens looked up in the GPU prefix cache.',
        read: (s) => s.counters?.prefixCacheQueriedTokens,
      },
      {
        name: 'kvchat_engine_prefix_cache_hit_tokens',
        help: 'vllm:prefix_cache_hits of each replica at its last scrape: of those, tokens found in the GPU prefix cache.',
        read: (s) => s.counters?.prefixCacheHitTokens,
      },
      {
        name: 'kvchat_lmcache_requested_tokens',
        help: 'lmcache:num_requested_tokens of each replica at its last scrape: tokens asked of LMCache.',
        read: (s) => s.counters?.lmcache?.requestedTokens,
      },
      {
        name: 'kvchat_lmcache_hit_tokens',
        help: 'lmcache:num_hit_tokens of each replica at its last scrape: tokens LMCache served (CPU, disk or remote tier).',
        read: (s) => s.counters?.lmcache?.hitTokens,
      },
    ];
    let snapshots: Promise<ReplicaMetricsSnapshot[]> | undefined;
    for (const counter of engineCounters) {
      this.metrics.gauge({
        name: counter.name,
        help: counter.help,
        labelNames: ['replica'],
        collect: async (gauge) => {
          // One snapshot read per scrape, shared by the four gauges.
          snapshots ??= this.engineSnapshots().finally(() => setImmediate(() => (snapshots = undefined)));
          const current = await snapshots;
          gauge.reset();
          for (const snapshot of current) {
            const value = counter.read(snapshot);
            if (value !== undefined)
              gauge.set({ replica: this.metrics.replicaLabel(snapshot.replica) }, value);
          }
        },
      });
    }
    // Catalogue targets (DeploymentGuards): attempts by outcome, and which circuit breakers are open. Counts
    // since this process started: use rate()/increase(). Labels are bounded by the catalogue's size.
    this.metrics.gauge({
      name: 'kvchat_provider_attempts_total',
      help: 'Chat attempts per catalogue target: outcome ok | failed | skipped (reason circuit-open, rpm, tpm); failed and skipped ones were followed by the next target.',
      labelNames: ['model', 'deployment', 'provider', 'outcome', 'reason'],
      collect: (gauge) => {
        gauge.reset();
        for (const { attempt, n } of this.guards?.attemptCounts() ?? []) {
          gauge.set(
            {
              model: attempt.model,
              deployment: attempt.deployment,
              provider: attempt.provider,
              outcome: attempt.outcome,
              reason: attempt.reason ?? '',
            },
            n,
          );
        }
      },
    });
    this.metrics.gauge({
      name: 'kvchat_deployment_circuit_open',
      help: 'Catalogue deployments whose circuit breaker is open (1: skipped until its cool-down or Retry-After ends).',
      labelNames: ['deployment'],
      collect: (gauge) => {
        gauge.reset();
        for (const id of this.guards?.openCircuits() ?? []) gauge.set({ deployment: id }, 1);
      },
    });
    // Queues: QueueStatsService (src/queues) reads every registered Bull queue; one read per scrape.
    let queueStats: Promise<QueueStats[]> | undefined;
    const readQueues = (): Promise<QueueStats[]> =>
      (queueStats ??= this.queueSnapshot().finally(() => setImmediate(() => (queueStats = undefined))));
    this.metrics.gauge({
      name: 'kvchat_queue_jobs',
      help: 'Jobs per Bull queue and state (waiting = queue depth; failed = kept failed jobs).',
      labelNames: ['queue', 'state'],
      collect: async (gauge) => {
        const stats = await readQueues();
        gauge.reset();
        for (const q of stats) {
          if (!q.counts) continue;
          for (const state of QUEUE_STATES) gauge.set({ queue: q.name, state }, q.counts[state]);
        }
      },
    });
    this.metrics.gauge({
      name: 'kvchat_queue_oldest_waiting_seconds',
      help: 'How long the oldest waiting job of each queue has been ready to run, seconds (0 when none waits).',
      labelNames: ['queue'],
      collect: async (gauge) => {
        const stats = await readQueues();
        gauge.reset();
        for (const q of stats) if (q.counts) gauge.set({ queue: q.name }, q.oldestWaitingMs / 1000);
      },
    });
    this.metrics.gauge({
      name: 'kvchat_queue_stalled',
      help: 'A queue whose jobs wait past QUEUE_STALL_SECONDS while none is active (1), else 0.',
      labelNames: ['queue'],
      collect: async (gauge) => {
        const stats = await readQueues();
        gauge.reset();
        for (const q of stats) gauge.set({ queue: q.name }, q.stalled ? 1 : 0);
      },
    });
    this.metrics.gauge({
      name: 'kvchat_queue_failed_attempts',
      help: 'Job attempts this process saw fail since it started, per queue (retried or not).',
      labelNames: ['queue'],
      collect: async (gauge) => {
        const stats = await readQueues();
        gauge.reset();
        for (const q of stats) gauge.set({ queue: q.name }, q.failedAttempts);
      },
    });
  }

  onApplicationBootstrap(): void {
    // A process without the inference module (a worker) has no replicas to report.
    this.router = this.optional(EndpointRouter);
    this.guards = this.optional(DeploymentGuards);
    this.engineMetrics = this.optional(EngineMetricsService);
    this.queueStats = this.optional(QueueStatsService);
  }

  private optional<T>(token: new (...args: never[]) => T): T | undefined {
    try {
      return this.moduleRef.get(token, { strict: false });
    } catch {
      return undefined;
    }
  }

  /** The engines' latest cache counters; empty when they cannot be read (a scrape must not fail). */
  private async engineSnapshots(): Promise<ReplicaMetricsSnapshot[]> {
    try {
      return (await this.engineMetrics?.snapshots()) ?? [];
    } catch (e) {
      this.logger.warn(`could not read engine metrics: ${e instanceof Error ? e.message : String(e)}`);
      return [];
    }
  }

  /** Every queue's stats; empty when they cannot be read (a scrape must not fail). */
  private async queueSnapshot(): Promise<QueueStats[]> {
    try {
      return (await this.queueStats?.snapshot(QUEUE_STATS_TIMEOUT_MS)) ?? [];
    } catch (e) {
      this.logger.warn(`could not read queue stats: ${e instanceof Error ? e.message : String(e)}`);
      return [];
    }
  }
}
