import { randomUUID } from 'node:crypto';
import { InjectQueue, Process, Processor } from '@nestjs/bull';
import { Injectable, Module, type Type } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { TerminusModule } from '@nestjs/terminus';
import type { Job, Queue } from 'bull';
import Redis from 'ioredis';
import { KvchatConfigModule } from '../../src/config/config.module';
import { QueuesHealthIndicator } from '../../src/health/queues.health';
import { registerQueue } from '../../src/queues/queue-options';
import { QueueStatsService } from '../../src/queues/queue-stats.service';
import { QueuesModule } from '../../src/queues/queues.module';
import { deleteRedisPrefix, LOCAL_REDIS } from '../factories/redis';

const FLAKY = 'flaky';
const IDLE = 'idle';

/** A job handler that always fails: its jobs must be retried with backoff, then kept as failed. */
@Processor(FLAKY)
class FlakyJob {
  attempts: number[] = [];

  @Process()
  handle(job: Job<{ n: number }>): Promise<void> {
    this.attempts.push(Date.now());
    return Promise.reject(new Error(`attempt ${job.attemptsMade + 1} of job ${job.data.n} failed`));
  }
}

@Injectable()
class Queues {
  constructor(
    @InjectQueue(FLAKY) readonly flaky: Queue,
    @InjectQueue(IDLE) readonly idle: Queue,
  ) {}
}

/** A feature module registering its own queues; nobody processes `idle`. */
@Module({
  imports: [registerQueue(FLAKY, { attempts: 2 }), registerQueue(IDLE)],
  providers: [FlakyJob, Queues],
})
class FeatureModule {}

const BUSY = 'busy';
const QUIET = 'quiet';

/** Two processed queues, one with three slots (three blocking reads pipelined on one connection). */
@Processor(BUSY)
class BusyJob {
  @Process({ concurrency: 3 })
  handle(): void {}
}
@Processor(QUIET)
class QuietJob {
  @Process()
  handle(): void {}
}
@Module({ imports: [registerQueue(BUSY), registerQueue(QUIET)], providers: [BusyJob, QuietJob] })
class ProcessedModule {}

const WRITER = 'writer';
/** A processor that records the jobs it finished. */
@Processor(WRITER)
class WriterJob {
  readonly done: number[] = [];
  @Process({ concurrency: 2 })
  handle(job: Job<{ n: number }>): void {
    this.done.push(job.data.n);
  }
}
@Module({ imports: [registerQueue(WRITER)], providers: [WriterJob] })
class WriterModule {}

/** The queues module and `feature` on the local Redis under `prefix`, started (hooks run), logs off. */
async function startQueues(prefix: string, feature: Type): Promise<TestingModule> {
  const app = await Test.createTestingModule({
    imports: [KvchatConfigModule.forRoot({ REDIS_KEY_PREFIX: prefix }), QueuesModule, feature],
  }).compile();
  app.useLogger(false);
  await app.init();
  return app;
}

/** The connections Redis lists as blocked whose name starts with `prefix`. */
async function blockedReads(redis: Redis, prefix: string): Promise<string[]> {
  const list = (await redis.client('LIST')) as string;
  return list.split('\n').filter((line) => line.includes(` name=${prefix}`) && / flags=\S*b/.test(line));
}

/** Bull queues on the local Redis: retries, kept failures, depth, stall detection and readiness. */
describe('queues (integration)', () => {
  let app: TestingModule;
  const prefix = `kvchat-test-${randomUUID()}:`;

  beforeAll(async () => {
    app = await Test.createTestingModule({
      imports: [
        KvchatConfigModule.forRoot({
          REDIS_KEY_PREFIX: prefix,
          QUEUE_JOB_BACKOFF_MS: '50',
          QUEUE_STALL_SECONDS: '1',
        }),
        QueuesModule,
        TerminusModule,
        FeatureModule,
      ],
      providers: [QueuesHealthIndicator],
    }).compile();
    app.useLogger(false);
    await app.init();
  });

  afterAll(async () => {
    await app?.close();
    await deleteRedisPrefix(prefix);
  });

  it('should keep the default backoff and failed-job retention when a queue overrides its attempts', () => {
    const { flaky, idle } = app.get(Queues);
    // Bull keeps the queue's default job options on the instance (not in its typings).
    const defaults = (q: Queue): unknown => (q as Queue & { defaultJobOptions: unknown }).defaultJobOptions;
    expect(defaults(flaky)).toMatchObject({
      attempts: 2,
      backoff: { type: 'exponential', delay: 50 },
      removeOnFail: false,
    });
    expect(defaults(idle)).toMatchObject({
      attempts: 3,
      backoff: { type: 'exponential', delay: 50 },
    });
  });

  it('should retry a failing job with backoff up to its attempts, then keep it as failed', async () => {
    const { flaky } = app.get(Queues);
    const handler = app.get(FlakyJob);
    const job = await flaky.add({ n: 1 });
    await expect(job.finished()).rejects.toThrow('attempt 2 of job 1 failed');
    const failed = await flaky.getFailed();
    expect(failed.map((j) => j.id)).toEqual([job.id]);
    expect(failed[0].attemptsMade).toBe(2);
    expect(handler.attempts).toHaveLength(2);
    expect(handler.attempts[1] - handler.attempts[0]).toBeGreaterThanOrEqual(45);

    const stats = await app.get(QueueStatsService).stats(FLAKY);
    expect(stats).toMatchObject({
      counts: { failed: 1, waiting: 0, active: 0 },
      failedAttempts: 2,
      stalled: false,
    });
  });

  it('should report a queue whose jobs nobody takes as stalled, and readiness down', async () => {
    const { idle } = app.get(Queues);
    const health = app.get(QueuesHealthIndicator);
    await idle.add({ n: 2 });
    expect((await health.isHealthy('queues', 1000)).queues.status).toBe('up');
    await new Promise((resolve) => setTimeout(resolve, 1200));

    const stats = await app.get(QueueStatsService).stats(IDLE);
    expect(stats.counts?.waiting).toBe(1);
    expect(stats.oldestWaitingMs).toBeGreaterThan(1000);
    expect(stats.stalled).toBe(true);
    const result = await health.isHealthy('queues', 1000);
    expect(result.queues).toMatchObject({
      status: 'down',
      message: 'stalled queues: idle',
      queues: { idle: { waiting: 1, stalled: true }, flaky: { stalled: false } },
    });
  });
});

describe('queues shutdown (integration)', () => {
  const prefix = `kvchat-test-${randomUUID()}:`;
  const redis = new Redis(LOCAL_REDIS);

  afterAll(async () => {
    await deleteRedisPrefix(prefix);
    redis.disconnect();
  });

  it('should end blocked reads with CLIENT UNBLOCK so that every QUIT is answered, not cut after its timeout', async () => {
    const app = await startQueues(prefix, ProcessedModule);
    // Every processor slot is waiting in BRPOPLPUSH before the app closes: 3 + 1 reads on 2 connections.
    const until = Date.now() + 10_000;
    while ((await blockedReads(redis, prefix)).length < 2 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await blockedReads(redis, prefix)).toHaveLength(2);
    const quits: Promise<string>[] = [];
    for (const queue of app.get(QueueStatsService).queues()) {
      const bclient = (queue as Queue & { bclient: Redis }).bclient;
      const quit = bclient.quit.bind(bclient);
      jest.spyOn(bclient, 'quit').mockImplementation(() => {
        const answered = quit();
        quits.push(answered.catch((e: Error) => e.message));
        return answered;
      });
    }

    await app.close();

    // Bull's own path would wait 500 ms, cut the connection and see "Connection is closed." instead.
    expect(quits).toHaveLength(2);
    expect(new Set(await Promise.all(quits))).toEqual(new Set(['OK']));
    expect(await blockedReads(redis, prefix)).toEqual([]);
  });
});

describe('queues shutdown while a processor is busy (integration)', () => {
  const prefix = `kvchat-test-${randomUUID()}:`;

  afterAll(async () => {
    await deleteRedisPrefix(prefix);
  });

  it('should finish the job that completing a job fetched as the queue began to close, not leave it active', async () => {
    const app = await startQueues(prefix, WriterModule);
    const [queue] = app.get(QueueStatsService).queues();
    const writer = app.get(WriterJob);
    // The race, made certain: the app starts closing while the script that completes the first job (and
    // moves the next waiting one to active for the same slot) is on its way to Redis.
    const client = queue.client as Redis & { moveToFinished(args: unknown[]): Promise<unknown> };
    const moveToFinished = client.moveToFinished.bind(client);
    let closing: Promise<void> | undefined;
    jest.spyOn(client, 'moveToFinished').mockImplementation((args: unknown[]) => {
      const answer = moveToFinished(args);
      closing ??= app.close();
      return answer;
    });
    await queue.addBulk(Array.from({ length: 6 }, (_, n) => ({ data: { n } })));
    const until = Date.now() + 10_000;
    while (!closing && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
    await closing;

    // Every job is either done or still waiting for the next instance: none is stuck in the active list.
    const redis = new Redis(LOCAL_REDIS);
    try {
      const keys = `${prefix}bull:${WRITER}:`;
      const active = await redis.lrange(`${keys}active`, 0, -1);
      const waiting = await redis.llen(`${keys}wait`);
      expect(active).toEqual([]);
      expect(writer.done.length + waiting).toBe(6);
      expect(writer.done.length).toBeGreaterThanOrEqual(2);
    } finally {
      redis.disconnect();
    }
  });
});
