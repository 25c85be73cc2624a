import { Global, Inject, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import type Redis from 'ioredis';
import { RedisConfig } from '../config/redis.config';
import { connectRedisOrFail } from './redis.connection';

/** Injection token of the shared ioredis client. */
export const REDIS = Symbol('REDIS');

/**
 * Global module exporting the shared ioredis client (`@Inject(REDIS)`). Boot fails with the
 * URL named when Redis does not answer; afterwards its commands fail fast (see connectRedisOrFail).
 */
@Global()
@Module({
  providers: [
    {
      provide: REDIS,
      inject: [RedisConfig],
      useFactory: (config: RedisConfig): Promise<Redis> =>
        connectRedisOrFail(config.REDIS_URL, 3000, config.REDIS_COMMAND_TIMEOUT_MS),
    },
  ],
  exports: [REDIS],
})
export class RedisModule implements OnApplicationShutdown {
  private readonly logger = new Logger(RedisModule.name);
  constructor(@Inject(REDIS) private readonly redis: Redis) {
    this.redis.on('error', (err: Error) => this.logger.warn(`redis error: ${err.message}`));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
