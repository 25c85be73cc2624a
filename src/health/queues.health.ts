import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { QueueStatsService } from '../queues/queue-stats.service';

/**
 * Every Bull queue answers with its counts within the timeout and none is stalled (a job waiting
 * past QUEUE_STALL_SECONDS with nothing active). Reports depth (`waiting`), `active`, `delayed`,
 * kept `failed` jobs and the oldest wait per queue; failed jobs alone do not make the service unready.
 * With `stallsFail` false (an `api` process, which takes no jobs) a stall is reported, not failed:
 * workers being gone must not take every api pod out of the Service.
 */
@Injectable()
export class QueuesHealthIndicator {
  constructor(
    private readonly queues: QueueStatsService,
    private readonly health: HealthIndicatorService,
  ) {}

  async isHealthy(key: string, timeoutMs: number, stallsFail = true): Promise<HealthIndicatorResult> {
    const session = this.health.check(key);
    const stats = await this.queues.snapshot(timeoutMs);
    const queues = Object.fromEntries(
      stats.map((s) => [
        s.name,
        s.counts
          ? {
              waiting: s.counts.waiting,
              active: s.counts.active,
              delayed: s.counts.delayed,
              failed: s.counts.failed,
              oldestWaitingMs: s.oldestWaitingMs,
              stalled: s.stalled,
            }
          : { error: s.error },
      ]),
    );
    const unreadable = stats.filter((s) => !s.counts).map((s) => s.name);
    const stalled = stallsFail ? stats.filter((s) => s.stalled).map((s) => s.name) : [];
    if (unreadable.length === 0 && stalled.length === 0) return session.up({ queues });
    const problems = [
      ...(stalled.length > 0 ? [`stalled queues: ${stalled.join(', ')}`] : []),
      ...(unreadable.length > 0 ? [`unreadable queues: ${unreadable.join(', ')}`] : []),
    ];
    return session.down({ message: problems.join('; '), queues });
  }
}
