import { InjectQueue, Process, Processor } from '@nestjs/bull';
import { Logger, type OnApplicationBootstrap } from '@nestjs/common';
import type { Queue } from 'bull';
import { UsageConfig } from '../../config/usage.config';
import { keepRepeatableJob } from '../../queues/repeatable-job';
import { UsageLedgerRepository } from '../usage-ledger.repository';
import { USAGE_QUEUE, USAGE_ROLLUP_JOB } from '../usage.queue';

/**
 * The daily rollup: a repeatable job (every USAGE_ROLLUP_INTERVAL_SECONDS; Bull runs one instance of
 * it across all workers) that folds newly stored records into `usage_daily`.
 */
@Processor(USAGE_QUEUE)
export class UsageRollupJob implements OnApplicationBootstrap {
  private readonly logger = new Logger(UsageRollupJob.name);

  constructor(
    @InjectQueue(USAGE_QUEUE) private readonly queue: Queue,
    private readonly ledger: UsageLedgerRepository,
    private readonly config: UsageConfig,
  ) {}

  /** Schedules the repeatable job, and again whenever the queue's Redis connection is back (keepRepeatableJob). */
  onApplicationBootstrap(): Promise<void> {
    return keepRepeatableJob(
      this.queue,
      USAGE_ROLLUP_JOB,
      this.config.USAGE_ROLLUP_INTERVAL_SECONDS * 1000,
      this.logger,
    );
  }

  @Process(USAGE_ROLLUP_JOB)
  async handle(): Promise<{ folded: number; throughSeq: string }> {
    const result = await this.ledger.rollup();
    if (result.folded > 0)
      this.logger.log(`usage rollup: ${result.folded} day rows through record ${result.throughSeq}`);
    return result;
  }
}
