import { Process, Processor } from '@nestjs/bull';
import { Logger } from '@nestjs/common';
import type { Job } from 'bull';
import { IngestionPipeline, type IngestionOutcome } from '../ingestion-pipeline';
import { INGEST_JOB, INGESTION_QUEUE, type IngestJobData } from '../ingestion.queue';

/**
 * Runs ingestions from the `ingestion` queue (one at a time per worker process: embedding batches
 * and the database are the bottleneck, not this loop). A transient failure fails the attempt, and
 * the queue retries it with exponential backoff (registerQueue defaults: QUEUE_JOB_ATTEMPTS,
 * QUEUE_JOB_BACKOFF_MS); after the last attempt the ingestion is marked failed with the reason.
 */
@Processor(INGESTION_QUEUE)
export class IngestJob {
  private readonly logger = new Logger('Knowledge');

  constructor(private readonly pipeline: IngestionPipeline) {}

  @Process(INGEST_JOB)
  async handle(job: Job<IngestJobData>): Promise<IngestionOutcome> {
    const { tenantId, ingestionId } = job.data;
    try {
      return await this.pipeline.run(tenantId, ingestionId, (done, total) => job.progress({ done, total }));
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (last) await this.pipeline.fail(tenantId, ingestionId, reason);
      else await this.pipeline.attemptFailed(tenantId, ingestionId, reason);
      this.logger.warn(`ingestion ${ingestionId} attempt ${job.attemptsMade + 1} failed: ${reason}`);
      throw e;
    }
  }
}
