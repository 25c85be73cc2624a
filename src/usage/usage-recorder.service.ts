import { InjectQueue } from '@nestjs/bull';
import { type BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import type { Queue } from 'bull';
import { UsageConfig } from '../config/usage.config';
import { PRICE_LOOKUP, type PriceLookup } from './price-lookup';
import { priceUsage } from './usage-pricing';
import { UsageMetrics } from './usage.metrics';
import { USAGE_QUEUE, USAGE_WRITE_JOB, type UsageWriteJobData } from './usage.queue';
import type { UsageInput, UsageRow } from './usage.types';

/** How long shutdown waits for the last batches to reach the queue, ms. */
const SHUTDOWN_FLUSH_MS = 10_000;

/**
 * Records billable requests in the usage ledger without making them wait: `record()` prices the
 * request, counts it in Prometheus and appends it to an in-memory batch, synchronously. A batch is
 * queued as one `usage` job when it holds USAGE_BATCH_SIZE records or its oldest record is
 * USAGE_FLUSH_MS old; a worker inserts it (UsageWriteJob). Once queued, records survive a crash of
 * this process (the job is in Redis until written; failed jobs are kept). On shutdown every pending
 * batch is queued before the queue closes. If Redis refuses a batch it is kept and retried; past
 * USAGE_BUFFER_MAX records the oldest are dropped and counted (`kvchat_usage_records_dropped_total`).
 */
@Injectable()
export class UsageRecorder implements BeforeApplicationShutdown {
  private readonly logger = new Logger(UsageRecorder.name);
  private buffer: UsageRow[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private closed = false;

  constructor(
    @InjectQueue(USAGE_QUEUE) private readonly queue: Queue<UsageWriteJobData>,
    @Inject(PRICE_LOOKUP) private readonly prices: PriceLookup,
    private readonly config: UsageConfig,
    private readonly metrics: UsageMetrics,
  ) {}

  /**
   * Records one billable request. Never throws for a Redis or database problem and never waits.
   * @returns the priced record as it will be stored (its `cost` is what spend budgets are charged)
   */
  record(input: UsageInput): UsageRow {
    const row = priceUsage(input, this.prices.priceOf(input.model, input.provider));
    this.metrics.count(row);
    this.buffer.push(row);
    if (this.buffer.length > this.config.USAGE_BUFFER_MAX) {
      const dropped = this.buffer.splice(0, this.buffer.length - this.config.USAGE_BUFFER_MAX);
      this.metrics.dropped(dropped.length);
      this.logger.error(`usage buffer full: dropped ${dropped.length} records (Redis unavailable?)`);
    }
    if (this.buffer.length >= this.config.USAGE_BATCH_SIZE) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.config.USAGE_FLUSH_MS).unref();
    return row;
  }

  /** Records waiting in memory to be queued. */
  get pending(): number {
    return this.buffer.length;
  }

  /**
   * Queues every buffered record now, in batches. Concurrent calls share one flush.
   * Failures leave the records buffered and schedule another try.
   */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.flushing ??= this.drain().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  /** Nest calls this before closing the queue's connections: queue what is left. */
  async beforeApplicationShutdown(): Promise<void> {
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, SHUTDOWN_FLUSH_MS);
    });
    await Promise.race([this.flushAll(), deadline]).finally(() => clearTimeout(timer));
    if (this.buffer.length > 0) {
      this.metrics.dropped(this.buffer.length);
      this.logger.error(`shutdown: ${this.buffer.length} usage records could not be queued`);
    }
  }

  private async flushAll(): Promise<void> {
    while (this.buffer.length > 0) {
      const before = this.buffer.length;
      await (this.flushing ?? this.flush());
      if (this.buffer.length >= before) await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Queues everything buffered in one round trip (`addBulk`), one job per USAGE_BATCH_SIZE records. */
  private async drain(): Promise<void> {
    while (this.buffer.length > 0) {
      const taken = this.buffer;
      this.buffer = [];
      const jobs = [];
      for (let i = 0; i < taken.length; i += this.config.USAGE_BATCH_SIZE) {
        jobs.push({
          name: USAGE_WRITE_JOB,
          data: { records: taken.slice(i, i + this.config.USAGE_BATCH_SIZE) },
        });
      }
      try {
        await this.queue.addBulk(jobs);
      } catch (e) {
        this.buffer = taken.concat(this.buffer);
        this.logger.warn(`could not queue ${taken.length} usage records: ${String(e)}; retrying`);
        if (!this.closed) this.timer ??= setTimeout(() => void this.flush(), 1000).unref();
        return;
      }
    }
  }
}
