import type { Logger } from '@nestjs/common';
import type { Queue } from 'bull';

/**
 * Keeps one repeatable job scheduled on `queue`: job `name` every `everyMs` milliseconds (Bull runs one
 * instance of it across all workers; finished runs are not kept, the last 100 failed ones are). A schedule
 * with another interval (a changed setting) is replaced. Scheduled now, and again whenever the queue's Redis
 * connection comes back: a Redis restarted without persistence has forgotten the schedule, which Bull
 * keeps in Redis. `runNow` also queues one run at once (each time it is scheduled).
 * @throws the Redis error of the first scheduling; later ones are logged on `logger`
 */
export async function keepRepeatableJob(
  queue: Queue,
  name: string,
  everyMs: number,
  logger: Logger,
  options: { runNow?: boolean } = {},
): Promise<void> {
  const schedule = async (): Promise<void> => {
    for (const job of await queue.getRepeatableJobs()) {
      if (job.name === name && Number(job.every) !== everyMs) await queue.removeRepeatableByKey(job.key);
    }
    const kept = { removeOnComplete: true, removeOnFail: 100 };
    await queue.add(name, {}, { repeat: { every: everyMs }, ...kept });
    if (options.runNow) await queue.add(name, {}, kept);
  };
  await schedule();
  queue.client.on('ready', () => {
    schedule().catch((e: unknown) =>
      logger.warn(`${name} not rescheduled: ${e instanceof Error ? e.message : String(e)}`),
    );
  });
}
