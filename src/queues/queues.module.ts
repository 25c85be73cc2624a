import { BullModule } from '@nestjs/bull';
import { Global, Module, type OnApplicationShutdown } from '@nestjs/common';
import type Redis from 'ioredis';
import { RedisConfig } from '../config/redis.config';
import { createRedisConnection } from '../redis/redis.connection';

/**
 * Connections Bull opened through `createClient`, per app (keyed by its RedisConfig instance). Bull
 * never closes connections made by a custom `createClient` (bull/lib/queue.js adds only its own to
 * `queue.clients`), so without this the process cannot exit after the app closes.
 */
const bullConnections = new WeakMap<RedisConfig, Set<Redis>>();

/**
 * Bull on the shared Redis connection factory. Each feature module registers its own queues with
 * `BullModule.registerQueue({ name, defaultJobOptions })`; the defaults here bound retries with
 * exponential backoff and keep failed jobs for inspection.
 */
@Global()
@Module({
  imports: [
    BullModule.forRootAsync({
      inject: [RedisConfig],
      useFactory: (config: RedisConfig) => ({
        prefix: `${config.REDIS_KEY_PREFIX}bull`,
        createClient: (type: 'client' | 'subscriber' | 'bclient') => {
          const connection = createRedisConnection(config.REDIS_URL, type);
          let open = bullConnections.get(config);
          if (!open) bullConnections.set(config, (open = new Set()));
          open.add(connection);
          return connection;
        },
        defaultJobOptions: {
          attempts: 3,
          backoff: { type: 'exponential', delay: 1000 },
          removeOnComplete: 1000,
          removeOnFail: false,
        },
      }),
    }),
  ],
  exports: [BullModule],
})
export class QueuesModule implements OnApplicationShutdown {
  constructor(private readonly config: RedisConfig) {}

  /** Runs after the queues (in deeper modules) have closed: drops the connections Bull left open. */
  onApplicationShutdown(): void {
    for (const connection of bullConnections.get(this.config) ?? []) connection.disconnect();
    bullConnections.delete(this.config);
  }
}
