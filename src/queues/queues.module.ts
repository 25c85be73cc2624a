import { BullModule } from '@nestjs/bull';
import { Global, Module, type OnApplicationShutdown } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
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
export class QueuesModule implements OnApplicationShutdown {
  constructor(private readonly config: RedisConfig) {}

  /** Runs after the queues (in deeper modules) have closed: drops the connections Bull left open. */
  onApplicationShutdown(): void {
    for (const connection of bullConnections.get(this.config) ?? []) connection.disconnect();
    bullConnections.delete(this.config);
  }
}
