import { IsInt, Min } from 'class-validator';

/** Bull queues (src/queues): job retry defaults and when a queue counts as stalled. */
export class QueuesConfig {
  /** Attempts per job, the first one included (bounded retries). */
  @IsInt() @Min(1) QUEUE_JOB_ATTEMPTS: number = 3;
  /** First retry delay, ms; doubles on each further attempt (exponential backoff). */
  @IsInt() @Min(0) QUEUE_JOB_BACKOFF_MS: number = 1000;
  /** Completed jobs kept per queue (failed jobs are always kept for inspection). */
  @IsInt() @Min(0) QUEUE_KEEP_COMPLETED: number = 1000;
  /**
   * A queue is stalled (and /health/ready fails) when a job has been waiting longer than this while
   * no job of the queue is active, i.e. no worker is taking its jobs, seconds.
   */
  @IsInt() @Min(1) QUEUE_STALL_SECONDS: number = 120;
}
