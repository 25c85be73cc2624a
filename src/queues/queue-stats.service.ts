import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import type { Queue } from 'bull';
import { QueuesConfig } from '../config/queues.config';
import { withTimeout } from '../common/with-timeout';

/** Job counts of one queue, by Bull state. */
export interface QueueJobCounts {
  /** Queue depth: jobs ready to run. */
  waiting: number;
  active: number;
  /** Scheduled, or waiting for a retry's backoff. */
  delayed: number;
  /** Kept failed jobs (attempts exhausted). */
  failed: number;
  completed: number;
  paused: number;
}

/** What a queue looks like now. */
export interface QueueStats {
  name: string;
  /** Null when the counts could not be read (Redis error or timeout; see `error`). */
  counts: QueueJobCounts | null;
  /** How long the oldest waiting job has been ready to run, ms (0 when none waits). */
  oldestWaitingMs: number;
  /** Jobs this process found stalled (worker lost its lock; Bull's `stalled` event) since boot. */
  stalledJobs: number;
  /** Jobs this process saw fail an attempt since boot (retried or not). */
  failedAttempts: number;
  /**
   * A job has waited longer than QUEUE_STALL_SECONDS while no job of the queue is active: nothing
   * takes its jobs (no worker, or workers stuck). /health/ready reports the service not ready.
   */
  stalled: boolean;
  error?: string;
}

function isBullQueue(value: unknown): value is Queue {
  const q = value as Partial<Queue> | null;
  return (
    typeof q === 'object' &&
    q !== null &&
    typeof q.name === 'string' &&
    typeof q.getJobCounts === 'function' &&
    typeof q.getWaiting === 'function'
  );
}

/**
 * Depth, failures and stall state of every Bull queue registered by any module (found at boot with
 * Nest's DiscoveryService). Read by the readiness check and by metrics.
 */
@Injectable()
export class QueueStatsService implements OnApplicationBootstrap {
  private readonly logger = new Logger(QueueStatsService.name);
  private readonly found = new Map<string, { queue: Queue; stalledJobs: number; failedAttempts: number }>();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly config: QueuesConfig,
  ) {}

  private discovered = false;

  onApplicationBootstrap(): void {
    this.discover();
  }

  /** Finds the app's queues once (at bootstrap, or on the first `queues()` call before it). */
  private discover(): void {
    if (this.discovered) return;
    this.discovered = true;
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.isDependencyTreeStatic() ? wrapper.instance : undefined;
      if (!isBullQueue(instance) || this.found.has(instance.name)) continue;
      const entry = { queue: instance, stalledJobs: 0, failedAttempts: 0 };
      instance.on('stalled', () => void entry.stalledJobs++);
      instance.on('failed', () => void entry.failedAttempts++);
      this.found.set(instance.name, entry);
    }
  }

  /** The queues, by name. */
  queues(): Queue[] {
    this.discover();
    return [...this.found.values()].map((e) => e.queue).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Every queue's stats, read in parallel; a queue that does not answer in `timeoutMs` reports an error. */
  snapshot(timeoutMs = 1000): Promise<QueueStats[]> {
    return Promise.all(this.queues().map((q) => this.stats(q.name, timeoutMs)));
  }

  /** One queue's stats. @throws Error for an unknown queue name */
  async stats(name: string, timeoutMs = 1000): Promise<QueueStats> {
    const entry = this.found.get(name);
    if (!entry) throw new Error(`no queue named ${name}`);
    const { queue, stalledJobs, failedAttempts } = entry;
    try {
      const [raw, oldest] = await withTimeout(
        Promise.all([queue.getJobCounts(), queue.getWaiting(0, 0)]),
        timeoutMs,
      );
      const c = raw as Partial<QueueJobCounts>;
      const counts: QueueJobCounts = {
        waiting: c.waiting ?? 0,
        active: c.active ?? 0,
        delayed: c.delayed ?? 0,
        failed: c.failed ?? 0,
        completed: c.completed ?? 0,
        paused: c.paused ?? 0,
      };
      const job = oldest[0];
      const oldestWaitingMs = job ? Math.max(0, Date.now() - readySince(job)) : 0;
      const stalled =
        counts.waiting > 0 && counts.active === 0 && oldestWaitingMs > this.config.QUEUE_STALL_SECONDS * 1000;
      return { name, counts, oldestWaitingMs, stalledJobs, failedAttempts, stalled };
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      this.logger.warn(`could not read queue ${name}: ${error}`);
      return { name, counts: null, oldestWaitingMs: 0, stalledJobs, failedAttempts, stalled: false, error };
    }
  }
}

/** When a waiting job became ready: its last attempt's end (a retry), else its creation plus its delay. */
function readySince(job: {
  timestamp: number;
  finishedOn?: number;
  processedOn?: number;
  opts: { delay?: number };
}): number {
  return Math.max(job.timestamp + (job.opts.delay ?? 0), job.finishedOn ?? 0, job.processedOn ?? 0);
}
