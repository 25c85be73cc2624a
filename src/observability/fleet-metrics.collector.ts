import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService, ModuleRef } from '@nestjs/core';
import type { Queue } from 'bull';
import { EndpointRouter } from '../inference/endpoint-router';
import { MetricsService } from './metrics.service';

/** Job states reported per queue in `kvchat_queue_jobs{queue,state}`. */
const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
/** Longest a scrape waits for one queue's counts, ms; a slow Redis must not hang /metrics. */
const QUEUE_COUNT_TIMEOUT_MS = 1000;

function isBullQueue(value: unknown): value is Queue {
  const q = value as Partial<Queue> | null;
  return (
    typeof q === 'object' && q !== null && typeof q.name === 'string' && typeof q.getJobCounts === 'function'
  );
}

/**
 * Gauges read at scrape time from the rest of the app: engine replica health and in-flight
 * requests (the EndpointRouter's view) and Bull queue depth and failed jobs (every queue any
 * module registered). Nothing here is imported by feature modules; it only reads their state.
 */
@Injectable()
export class FleetMetricsCollector implements OnApplicationBootstrap {
  private readonly logger = new Logger(FleetMetricsCollector.name);
  private router?: EndpointRouter;
  private queues: Queue[] = [];

  constructor(
    private readonly metrics: MetricsService,
    private readonly moduleRef: ModuleRef,
    private readonly discovery: DiscoveryService,
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
    this.metrics.gauge({
      name: 'kvchat_queue_jobs',
      help: 'Jobs per Bull queue and state (waiting = queue depth; failed = kept failed jobs).',
      labelNames: ['queue', 'state'],
      collect: async (gauge) => {
        const counts = await Promise.all(
          this.queues.map(async (q) => ({ q, counts: await this.countJobs(q) })),
        );
        gauge.reset();
        for (const { q, counts: c } of counts) {
          if (!c) continue;
          for (const state of QUEUE_STATES) gauge.set({ queue: q.name, state }, c[state] ?? 0);
        }
      },
    });
  }

  onApplicationBootstrap(): void {
    try {
      this.router = this.moduleRef.get(EndpointRouter, { strict: false });
    } catch {
      this.router = undefined; // a process without the inference module (a worker) has no replicas to report
    }
    const seen = new Set<string>();
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.isDependencyTreeStatic() ? wrapper.instance : undefined;
      if (isBullQueue(instance) && !seen.has(instance.name)) {
        seen.add(instance.name);
        this.queues.push(instance);
      }
    }
  }

  private async countJobs(
    queue: Queue,
  ): Promise<Partial<Record<(typeof QUEUE_STATES)[number], number>> | undefined> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        queue.getJobCounts(),
        new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), QUEUE_COUNT_TIMEOUT_MS);
        }),
      ]);
    } catch (e) {
      this.logger.warn(
        `could not read job counts of queue ${queue.name}: ${e instanceof Error ? e.message : String(e)}`,
      );
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }
}
