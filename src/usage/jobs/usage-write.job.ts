import { Process, Processor } from '@nestjs/bull';
import type { Job } from 'bull';
import { UsageLedgerRepository } from '../usage-ledger.repository';
import { UsageMetrics } from '../usage.metrics';
import { USAGE_QUEUE, USAGE_WRITE_JOB, type UsageWriteJobData } from '../usage.queue';

/**
 * Writes a batch of usage records in one INSERT. Idempotent (records carry their id), so a retried
 * job never double-counts. A failed attempt (database down) is retried with backoff; a job whose
 * attempts are spent is kept in Redis as failed, with its records, for inspection and retry.
 */
@Processor(USAGE_QUEUE)
export class UsageWriteJob {
  constructor(
    private readonly ledger: UsageLedgerRepository,
    private readonly metrics: UsageMetrics,
  ) {}

  /** Four batches at once per worker process: PostgreSQL, not this process, is the bottleneck (bench:usage). */
  @Process({ name: USAGE_WRITE_JOB, concurrency: 4 })
  async handle(job: Job<UsageWriteJobData>): Promise<{ inserted: number }> {
    const inserted = await this.ledger.insertBatch(job.data.records);
    this.metrics.written(inserted);
    return { inserted };
  }
}
