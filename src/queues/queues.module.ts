import { BullModule } from '@nestjs/bull';
import { type BeforeApplicationShutdown, Global, Module, type OnApplicationShutdown } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import type { Queue } from 'bull';
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

/** At most this many rounds of `CLIENT UNBLOCK` at shutdown (one per pipelined read, i.e. per processor slot). */
const UNBLOCK_ROUNDS = 16;

/** What shutdown reads of a Bull queue beyond its typings (bull/lib/queue.js, bull/lib/worker.js). */
type BullInternals = Queue & {
  bclientInitialized?: boolean;
  bclient: Redis & { stream?: { localPort?: number } };
  clientName(): string;
};

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
export class QueuesModule implements BeforeApplicationShutdown, OnApplicationShutdown {
  constructor(
    private readonly config: RedisConfig,
    private readonly stats: QueueStatsService,
  ) {}

  /**
   * Closes every queue at once, without waiting out their blocking reads. @nestjs/bull closes each queue
   * in its own module's shutdown hook, one module after another, and each close sends QUIT on its
   * blocking connection, which Redis answers only after the pending BRPOPLPUSH (up to Bull's 5 s
   * drainDelay); Bull gives up after 500 ms and cuts it, so four queues took ~2 s. Here all queues close
   * together, and once their QUITs are sent, `CLIENT UNBLOCK` ends the blocked reads: each returns
   * nothing (a closing queue asks for no more jobs), the QUIT is answered, and no connection is cut
   * under a read that could still hand it a job. Global modules run their hooks last, so producers'
   * own hooks (UsageRecorder's final flush) have run. `Queue.close()` is idempotent: @nestjs/bull's
   * later call gets the same promise.
   */
  async beforeApplicationShutdown(): Promise<void> {
    const queues = this.stats.queues();
    let settled = false;
    const closed = Promise.all(queues.map((queue) => queue.close())).finally(() => {
      settled = true;
    });
    // Queue.close() sends QUIT within a few microtasks (no I/O before it): after this turn of the loop
    // it is on the wire, so an unblocked read cannot be followed by another. A processor with
    // concurrency > 1 pipelines one read per slot on the same connection: each is ended in turn.
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (let round = 0; round < UNBLOCK_ROUNDS && !settled && queues.length > 0; round++) {
      const ended = await this.unblockReads(queues, queues[0].client).catch(() => 0);
      if (ended === 0) break;
      await new Promise<void>((resolve) => setTimeout(resolve, 5));
    }
    await closed;
  }

  /**
   * Sends `CLIENT UNBLOCK` for these queues' blocking connections that Redis lists as blocked. Bull
   * names each one after its queue (`clientName()`), shared by every process on the same prefix, so a
   * connection is also matched by its local port: only this process's reads are ended.
   */
  private async unblockReads(queues: Queue[], client: Redis): Promise<number> {
    const ours = new Map<string, number | undefined>();
    for (const queue of queues as BullInternals[]) {
      if (queue.bclientInitialized) ours.set(queue.clientName(), queue.bclient.stream?.localPort);
    }
    if (ours.size === 0 || client.status !== 'ready') return 0;
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
    return blocked.length;
  }

  /** Runs after the queues (in deeper modules) have closed: drops the connections Bull left open. */
  onApplicationShutdown(): void {
    for (const connection of bullConnections.get(this.config) ?? []) connection.disconnect();
    bullConnections.delete(this.config);
  }
}
