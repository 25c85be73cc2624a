import { BullModule } from '@nestjs/bull';
import { Global, Module } from '@nestjs/common';
import { RedisConfig } from '../config/redis.config';
import { createRedisConnection } from '../redis/redis.connection';

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
        createClient: (type: 'client' | 'subscriber' | 'bclient') => createRedisConnection(config.REDIS_URL, type),
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
export class QueuesModule {}
