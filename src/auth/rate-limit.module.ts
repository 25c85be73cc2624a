import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import { type ExecutionContext, Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import type Redis from 'ioredis';
import { AppConfig } from '../config/app.config';
import { RedisConfig } from '../config/redis.config';
import { REDIS } from '../redis/redis.module';
import type { AuthenticatedRequest } from './auth.guard';

/**
 * Per-API-key rate limit (RATE_LIMIT_PER_MINUTE requests a minute; 0 = off), counted in Redis so
 * every API replica shares one budget. Unauthenticated routes (health, metrics) are not limited.
 * Over the limit: 429 with `Retry-After`, as an RFC 9457 problem.
 */
@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [AppConfig, RedisConfig, REDIS],
      useFactory: (app: AppConfig, redisConfig: RedisConfig, redis: Redis) => ({
        // The `default` name keeps the standard header names (Retry-After, X-RateLimit-*) without a suffix.
        throttlers: [{ name: 'default', ttl: 60_000, limit: Math.max(1, app.RATE_LIMIT_PER_MINUTE) }],
        skipIf: (context: ExecutionContext) =>
          app.RATE_LIMIT_PER_MINUTE === 0 || !context.switchToHttp().getRequest<AuthenticatedRequest>().auth,
        getTracker: (req: Record<string, unknown>) => (req as unknown as AuthenticatedRequest).auth.keyId,
        generateKey: (_context: ExecutionContext, tracker: string, name: string) =>
          `${redisConfig.REDIS_KEY_PREFIX}throttle:${name}:${tracker}`,
        storage: new ThrottlerStorageRedisService(redis),
      }),
    }),
  ],
  exports: [ThrottlerModule],
})
export class RateLimitModule {}
