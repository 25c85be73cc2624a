import { InjectQueue, Process, Processor } from '@nestjs/bull';
import { Logger, type OnApplicationBootstrap } from '@nestjs/common';
import type { Queue } from 'bull';
import { TurnsConfig } from '../../config/turns.config';
import { type SweepResult, TurnSweeper } from '../turn-sweeper';
import { TURN_SWEEP_JOB, TURNS_QUEUE } from '../turns.queue';

/**
 * The sweeper of interrupted turns (TurnSweeper): once at boot and then a repeatable job every
 * TURN_SWEEP_INTERVAL_SECONDS (Bull runs one instance of it across all workers). Registered with
 * `queueProcessor`, so it runs only in processes that take jobs (KVCHAT_ROLE=worker or all).
 */
@Processor(TURNS_QUEUE)
export class TurnSweepJob implements OnApplicationBootstrap {
  private readonly logger = new Logger(TurnSweepJob.name);

  constructor(
    @InjectQueue(TURNS_QUEUE) private readonly queue: Queue,
    private readonly sweeper: TurnSweeper,
    private readonly config: TurnsConfig,
  ) {}

  /**
   * Schedules the repeatable job and one sweep now, and again whenever the queue's Redis connection is
   * back: a Redis restarted without persistence has forgotten the schedule (Bull keeps it in Redis).
   */
  async onApplicationBootstrap(): Promise<void> {
    await this.schedule();
    this.queue.client.on('ready', () => {
      this.schedule().catch((e: unknown) =>
        this.logger.warn(`turn sweep not rescheduled: ${(e as Error).message}`),
      );
    });
  }

  /** Idempotent: Bull keys a repeatable job by name and interval. */
  private async schedule(): Promise<void> {
    const every = this.config.TURN_SWEEP_INTERVAL_SECONDS * 1000;
    for (const job of await this.queue.getRepeatableJobs()) {
      if (job.name === TURN_SWEEP_JOB && Number(job.every) !== every)
        await this.queue.removeRepeatableByKey(job.key);
    }
    await this.queue.add(
      TURN_SWEEP_JOB,
      {},
      { repeat: { every }, removeOnComplete: true, removeOnFail: 100 },
    );
    await this.queue.add(TURN_SWEEP_JOB, {}, { removeOnComplete: true, removeOnFail: 100 });
  }

  @Process(TURN_SWEEP_JOB)
  handle(): Promise<SweepResult> {
    return this.sweeper.sweep();
  }
}
