import { Injectable, Logger } from '@nestjs/common';
import { RedisResponseCacheStore } from '../../src/caching/redis-response-cache.store';
import type { CachedAnswer } from '../../src/caching/response-cache.types';

/** The Redis store, logging how long each exact lookup takes. */
@Injectable()
export class TimedResponseCacheStore extends RedisResponseCacheStore {
  private readonly log = new Logger('ResponseCacheStore');
  override async getExact(tenantId: string, scope: string, question: string): Promise<CachedAnswer | null> {
    const started = performance.now();
    try {
      return await super.getExact(tenantId, scope, question);
    } finally {
      this.log.debug(`exact lookup in ${(performance.now() - started).toFixed(1)} ms`);
    }
  }
}
