import { InjectQueue, Process, Processor } from '@nestjs/bull';
import { Logger, type OnApplicationBootstrap } from '@nestjs/common';
import type { Queue } from 'bull';
import { TurnsConfig } from '../../config/turns.config';
import { keepRepeatableJob } from '../../queues/repeatable-job';
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
   * back (keepRepeatableJob).
   */
  onApplicationBootstrap(): Promise<void> {
    return keepRepeatableJob(
      this.queue,
      TURN_SWEEP_JOB,
      this.config.TURN_SWEEP_INTERVAL_SECONDS * 1000,
      this.logger,
      {
        runNow: true,
      },
    );
  }

  @Process(TURN_SWEEP_JOB)
  handle(): Promise<SweepResult> {
    return this.sweeper.sweep();
  }
}
