import { setImmediate, setTimeout } from 'node:timers/promises';
import { BullModule } from '@nestjs/bull';
import { Global, Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import type { Job, Queue } from 'bull';
import type Redis from 'ioredis';
import { QueuesConfig } from '../config/queues.config';
import { RedisConfig } from '../config/redis.config';
import { createRedisConnection } from '../redis/redis.connection';
import { defaultJobOptions } from './queue-options';
import { QueueStatsService } from './queue-stats.service';

/**
 * Connections Bull opened through `createClient`, per app (keyed by its RedisConfig instance). Bull
 * never closes connections made by a custom `createClient` (bull/lib/queue.js adds only its own to
 * `queue.clients`), so without this the process cannot exit after the app closes.
 */
const bullConnections = new WeakMap<RedisConfig, Set<Redis>>();

/** How long shutdown keeps ending blocked reads before leaving the rest to Bull's own timeout, ms. */
const UNBLOCK_FOR_MS = 2000;

/** What shutdown uses of a Bull queue beyond its typings (bull/lib/queue.js, bull/lib/worker.js). */
type BullInternals = Queue & {
  bclientInitialized?: boolean;
  bclient: Redis & { stream?: { localPort?: number } };
  clientName(): string;
  closing?: Promise<void>;
  /** One processor slot's loop step: process `job` (or fetch one), then step again. */
  processJobs(index: number, resolve: (closing: unknown) => void, job?: Job): unknown;
  processJob(job: Job): Promise<unknown>;
};

/**
 * Makes a queue finish the job it fetched as it began to close instead of dropping it. When a job of
 * a processor slot completes, Bull's moveToFinished script also moves the next waiting job to active
 * (locked) and hands it to the slot; if `close()` began during that round trip, Bull 4.16 drops it
 * (bull/lib/queue.js `_processJobOnNextTick`), and it sits in the active list until its lock expires
 * and a stalled check recovers it, 30-60 s later: a usage batch written a minute late, seen in
 * test/e2e/usage.e2e.spec.ts when the app closed while its writer was busy. BullMQ fixed the same race
 * ("wait fetched jobs to be processed when closing", taskforcesh/bullmq#3059); Bull has not. Here such a
 * job is processed, and the slot's promise, which close() waits for, includes it (it fetches no other:
 * moveToFinished fetches nothing for a closing queue).
 */
function processJobsFetchedWhileClosing(queue: BullInternals): void {
  const step = queue.processJobs.bind(queue);
  queue.processJobs = (index, resolve, job) => {
    if (job && queue.closing) return queue.processJob(job).finally(() => step(index, resolve));
    return step(index, resolve, job);
  };
}

/**
 * Bull on the shared Redis connection factory. Each feature module registers its own queues with
 * `registerQueue(name, overrides)` (queue-options.ts), which keeps the defaults here: bounded
 * attempts with exponential backoff, failed jobs kept for inspection (QUEUE_* variables). Job
 * handlers run in their own MikroORM context (`@CreateRequestContext()` on the `@Process` method).
 * QueueStatsService reports every queue's depth, failures and stall state (readiness, metrics).
 */
@Global()
@Module({
  imports: [
    DiscoveryModule,
    BullModule.forRootAsync({
      inject: [RedisConfig, QueuesConfig],
      useFactory: (config: RedisConfig, queues: QueuesConfig) => ({
        prefix: `${config.REDIS_KEY_PREFIX}bull`,
        createClient: (type: 'client' | 'subscriber' | 'bclient') => {
          const connection = createRedisConnection(config.REDIS_URL, type);
          // The blocking connection is closed by QUIT, never cut: a BRPOPLPUSH answered just as it was cut
          // would leave its job in the active list without a lock until the stalled check (30 s) recovers it.
          let open = bullConnections.get(config);
          if (!open) bullConnections.set(config, (open = new Set()));
          open.add(connection);
          return connection;
        },
        defaultJobOptions: defaultJobOptions(queues),
      }),
    }),
  ],
  providers: [QueueStatsService],
  exports: [BullModule, QueueStatsService],
})
export class QueuesModule implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    private readonly config: RedisConfig,
    private readonly stats: QueueStatsService,
  ) {}

  private closing?: Promise<void>;

  /**
   * Makes every queue's shutdown hook close all queues at once. @nestjs/bull gives each queue an
   * `onApplicationShutdown` that closes it, and Nest runs those module by module, one after another;
   * each close waited up to 500 ms for its blocking connection (see closeQueues), so four queues took
   * ~2 s. The queues still close in the shutdown phase, after the HTTP server has closed, as before.
   */
  onApplicationBootstrap(): void {
    for (const queue of this.stats.queues()) {
      (queue as Queue & OnApplicationShutdown).onApplicationShutdown = () => this.closeAll();
      processJobsFetchedWhileClosing(queue as BullInternals);
    }
  }

  /** Closes every queue (once; later calls share the first). */
  closeAll(): Promise<void> {
    this.closing ??= this.closeQueues();
    return this.closing;
  }

  /**
   * Closes the queues together without cutting a blocking read. Bull's close sends QUIT on the blocking
   * connection, which Redis answers only after the BRPOPLPUSH reads ahead of it (one per processor slot,
   * pipelined; each may block up to Bull's 5 s drainDelay). Bull gives up after 500 ms and cuts the
   * connection, and a read answered with a job just as it is cut leaves that job in the active list
   * with nobody working on it until the stalled check recovers it, 30-60 s later (seen in
   * test/e2e/usage.e2e.spec.ts under load). So, until the queues are closed, every read of this process
   * that Redis lists as blocked is ended with `CLIENT UNBLOCK` (it returns nothing; a closing queue asks
   * for no more jobs): each read either hands its job to Bull, which finishes it before closing, or ends
   * empty, and the QUIT is answered rather than cut.
   */
  private async closeQueues(): Promise<void> {
    const queues = this.stats.queues();
    if (queues.length === 0) return;
    let settled = false;
    const closed = Promise.all(queues.map((queue) => queue.close())).finally(() => {
      settled = true;
    });
    // Queue.close() sends QUIT within a few microtasks (no I/O before it): after this turn of the loop
    // it is on the wire, behind the reads already sent.
    await setImmediate();
    const until = Date.now() + UNBLOCK_FOR_MS;
    while (!settled && Date.now() < until) {
      await this.unblockReads(queues, queues[0].client).catch(() => undefined);
      await setTimeout(5);
    }
    await closed;
  }

  /**
   * Sends `CLIENT UNBLOCK` for these queues' blocking connections that Redis lists as blocked. Bull
   * names each one after its queue (`clientName()`), shared by every process on the same prefix, so a
   * connection is also matched by its local port: only this process's reads are ended.
   */
  private async unblockReads(queues: Queue[], client: Redis): Promise<void> {
    const ours = new Map<string, number | undefined>();
    for (const queue of queues as BullInternals[]) {
      if (queue.bclientInitialized) ours.set(queue.clientName(), queue.bclient.stream?.localPort);
    }
    if (ours.size === 0 || client.status !== 'ready') return;
    const list = (await client.client('LIST')) as string;
    const blocked = list
      .split('\n')
      .map((line) =>
        Object.fromEntries(
          line
            .split(' ')
            .map((field) => [field.slice(0, field.indexOf('=')), field.slice(field.indexOf('=') + 1)]),
        ),
      )
      .filter(
        (fields: Record<string, string>) =>
          fields.flags?.includes('b') &&
          ours.has(fields.name) &&
          fields.addr?.endsWith(`:${ours.get(fields.name)}`),
      );
    await Promise.all(blocked.map((fields: Record<string, string>) => client.client('UNBLOCK', fields.id)));
  }

  /** Runs after the queues (in deeper modules) have closed: drops the connections Bull left open. */
  onApplicationShutdown(): void {
    for (const connection of bullConnections.get(this.config) ?? []) connection.disconnect();
    bullConnections.delete(this.config);
  }
}
