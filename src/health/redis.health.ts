import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import type Redis from 'ioredis';
import { withTimeout } from '../common/with-timeout';
import { REDIS } from '../redis/redis.module';

/** Redis answers PING within the timeout. */
@Injectable()
export class RedisHealthIndicator {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    private readonly health: HealthIndicatorService,
  ) {}

  async isHealthy(key: string, timeoutMs: number): Promise<HealthIndicatorResult> {
    const session = this.health.check(key);
    try {
      const started = performance.now();
      await withTimeout(this.redis.ping(), timeoutMs);
      return session.up({ latencyMs: Math.round(performance.now() - started) });
    } catch (e) {
      return session.down({ message: e instanceof Error ? e.message : String(e) });
    }
  }
}
