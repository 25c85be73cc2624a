import { BullModule } from '@nestjs/bull';
import type { DynamicModule } from '@nestjs/common';
import type { JobOptions } from 'bull';
import { QueuesConfig } from '../config/queues.config';

/**
 * Options every job gets unless its queue or its `add` call says otherwise: bounded attempts with
 * exponential backoff (QUEUE_JOB_ATTEMPTS, QUEUE_JOB_BACKOFF_MS), completed jobs trimmed
 * (QUEUE_KEEP_COMPLETED) and failed jobs kept for inspection.
 */
export function defaultJobOptions(config: QueuesConfig): JobOptions {
  return {
    attempts: config.QUEUE_JOB_ATTEMPTS,
    backoff: { type: 'exponential', delay: config.QUEUE_JOB_BACKOFF_MS },
    removeOnComplete: config.QUEUE_KEEP_COMPLETED,
    removeOnFail: false,
  };
}

/**
 * Registers a feature module's queue (put it in that module's `imports`). Use it instead of
 * `BullModule.registerQueue({ name, defaultJobOptions })`: @nestjs/bull replaces the root
 * `defaultJobOptions` wholesale when a queue sets its own, so a queue that only wanted another
 * attempt count would silently lose its backoff; here `overrides` are merged over the defaults.
 *
 * ```ts
 * @Module({ imports: [registerQueue(SUMMARIES_QUEUE, { attempts: 2 })], providers: [SummarizeJob] })
 * ```
 */
export function registerQueue(name: string, overrides: JobOptions = {}): DynamicModule {
  return BullModule.registerQueueAsync({
    name,
    inject: [QueuesConfig],
    useFactory: (config: QueuesConfig) => ({
      defaultJobOptions: { ...defaultJobOptions(config), ...overrides },
    }),
  });
}
