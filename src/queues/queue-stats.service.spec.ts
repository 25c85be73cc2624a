import { EventEmitter } from 'node:events';
import type { DiscoveryService } from '@nestjs/core';
import { QueuesConfig } from '../config/queues.config';
import { QueueStatsService } from './queue-stats.service';

/** A Bull queue stand-in: counts, the oldest waiting job, events. */
class FakeQueue extends EventEmitter {
  counts: Record<string, number> = { waiting: 0, active: 0, delayed: 0, failed: 0, completed: 0, paused: 0 };
  oldest: { timestamp: number; processedOn?: number; finishedOn?: number; opts: { delay?: number } } | null =
    null;
  hang = false;

  constructor(readonly name: string) {
    super();
  }

  getJobCounts(): Promise<Record<string, number>> {
    return this.hang ? new Promise(() => undefined) : Promise.resolve({ ...this.counts });
  }

  getWaiting(): Promise<unknown[]> {
    return Promise.resolve(this.oldest ? [this.oldest] : []);
  }
}

describe('QueueStatsService', () => {
  const build = (queues: FakeQueue[], stallSeconds = 60) => {
    const discovery = {
      getProviders: () => [
        ...queues.map((q) => ({ instance: q, isDependencyTreeStatic: () => true })),
        { instance: { name: 'not a queue' }, isDependencyTreeStatic: () => true },
        { instance: queues[0], isDependencyTreeStatic: () => true },
      ],
    } as unknown as DiscoveryService;
    const sut = new QueueStatsService(
      discovery,
      Object.assign(new QueuesConfig(), { QUEUE_STALL_SECONDS: stallSeconds }),
    );
    sut.onApplicationBootstrap();
    return sut;
  };

  it('should find every registered queue once and report its counts', async () => {
    const a = new FakeQueue('summaries');
    const b = new FakeQueue('ingestion');
    a.counts = { ...a.counts, waiting: 3, active: 1, failed: 2, completed: 10 };
    const sut = build([a, b]);
    expect(sut.queues().map((q) => q.name)).toEqual(['ingestion', 'summaries']);
    const [ingestion, summaries] = await sut.snapshot();
    expect(ingestion).toMatchObject({ name: 'ingestion', oldestWaitingMs: 0, stalled: false });
    expect(summaries.counts).toEqual({
      waiting: 3,
      active: 1,
      delayed: 0,
      failed: 2,
      completed: 10,
      paused: 0,
    });
  });

  it('should call a queue stalled when a job waits past the limit with nothing active', async () => {
    const q = new FakeQueue('summaries');
    q.counts.waiting = 1;
    q.oldest = { timestamp: Date.now() - 90_000, opts: {} };
    const sut = build([q], 60);
    const stats = await sut.stats('summaries');
    expect(stats.stalled).toBe(true);
    expect(stats.oldestWaitingMs).toBeGreaterThanOrEqual(90_000);

    q.counts.active = 1; // a worker is busy: the backlog is load, not a stall
    expect((await sut.stats('summaries')).stalled).toBe(false);
  });

  it('should count a delayed or retried job as waiting only since it became ready', async () => {
    const q = new FakeQueue('summaries');
    q.counts.waiting = 1;
    q.oldest = { timestamp: Date.now() - 600_000, opts: { delay: 590_000 } };
    const sut = build([q], 60);
    expect((await sut.stats('summaries')).stalled).toBe(false);
    q.oldest = { timestamp: Date.now() - 600_000, finishedOn: Date.now() - 5_000, opts: {} };
    expect((await sut.stats('summaries')).oldestWaitingMs).toBeLessThan(60_000);
  });

  it('should report a queue that does not answer in time as unreadable, not stalled', async () => {
    const q = new FakeQueue('summaries');
    q.hang = true;
    const sut = build([q]);
    const stats = await sut.stats('summaries', 20);
    expect(stats).toMatchObject({ counts: null, stalled: false, error: 'timed out after 20 ms' });
  });

  it('should count stalled jobs and failed attempts this process saw', async () => {
    const q = new FakeQueue('summaries');
    const sut = build([q]);
    q.emit('stalled', {});
    q.emit('failed', {}, new Error('x'));
    q.emit('failed', {}, new Error('y'));
    await expect(sut.stats('summaries')).resolves.toMatchObject({ stalledJobs: 1, failedAttempts: 2 });
  });

  it('should reject an unknown queue name', async () => {
    await expect(build([new FakeQueue('a')]).stats('b')).rejects.toThrow('no queue named b');
  });
});
