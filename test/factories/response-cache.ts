import { randomUUID } from 'node:crypto';
import { EntityManager } from '@mikro-orm/postgresql';
import type { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Tenant } from '../../src/auth/tenant.entity';
import { CachingModule } from '../../src/caching/caching.module';
import { ResponseCache } from '../../src/caching/response-cache.service';
import type { ResponseCacheScope } from '../../src/caching/response-cache.types';
import type { Env } from '../../src/config/config.loader';
import { KvchatConfigModule } from '../../src/config/config.module';
import { DatabaseModule } from '../../src/database/database.module';
import { EmbeddedEngineModule } from '../../src/embedded-engine.module';
import { ENTITIES } from '../../src/entities';
import type { ChatResult } from '../../src/inference/inference.types';
import { RedisModule } from '../../src/redis/redis.module';
import { deleteRedisPrefix } from './redis';

/** The caching module booted on the real Redis, a database and the in-process engine simulator. */
export interface CachingHarness {
  app: INestApplicationContext;
  cache: ResponseCache;
  /** Creates a tenant row (vectors reference tenants) and returns its id. */
  tenant(): Promise<string>;
  close(): Promise<void>;
}

/** Boots the caching module with `env` over in-memory PGlite (unless DATABASE_URL) and a unique Redis prefix. */
export async function startCachingHarness(env: Env = {}): Promise<CachingHarness> {
  const prefix = `kvchat-test-${randomUUID()}:`;
  const moduleRef = await Test.createTestingModule({
    imports: [
      KvchatConfigModule.forRoot({
        DATA_DIR: 'memory://',
        EMBEDDED_DB_PORT: '0',
        SIMULATOR_TIME_SCALE: '0',
        REDIS_KEY_PREFIX: prefix,
        ...env,
      }),
      RedisModule,
      DatabaseModule.forRoot(ENTITIES),
      EmbeddedEngineModule,
      CachingModule,
    ],
  }).compile();
  moduleRef.useLogger(false);
  const app = await moduleRef.init();
  const em = app.get(EntityManager);
  return {
    app,
    cache: app.get(ResponseCache),
    tenant: async () => {
      const fork = em.fork();
      const tenant = fork.create(Tenant, { name: `tenant-${randomUUID()}` });
      await fork.flush();
      return tenant.id;
    },
    close: async () => {
      await app.close();
      if (env.REDIS_KEY_PREFIX === undefined) await deleteRedisPrefix(prefix);
    },
  };
}

/** A scope with defaults for a first question. */
export function scopeFor(tenantId: string, overrides: Partial<ResponseCacheScope> = {}): ResponseCacheScope {
  return {
    tenantId,
    agent: 'assistant',
    model: 'test-model',
    templateVersion: 'test@1',
    params: { temperature: 0 },
    context: 'none',
    ...overrides,
  };
}

/** An engine result as InferenceService returns it. */
export function engineResult(content: string, overrides: Partial<ChatResult> = {}): ChatResult {
  return {
    content,
    finishReason: 'stop',
    model: 'test-model',
    usage: { promptTokens: 40, completionTokens: 12, cachedTokens: 0 },
    replica: 'http://engine-0/v1',
    timings: { ttftMs: 5, totalMs: 20, itlMs: 1 },
    ...overrides,
  };
}
