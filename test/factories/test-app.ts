import { randomUUID } from 'node:crypto';
import type { ModuleMetadata } from '@nestjs/common';
import { createApp, type RunningApp } from '../../src/app.factory';
import { ApiKeyService } from '../../src/auth/api-key.service';
import type { Env } from '../../src/config/config.loader';
import { deleteRedisPrefix } from './redis';
import { workerDatabaseUrl } from './worker-database';

/** A kvchat booted for a test on real ports, with two tenants' keys. */
export interface TestApp {
  url: string;
  running: RunningApp;
  /** Key of tenant A. */
  keyA: string;
  /** Key of tenant B. */
  keyB: string;
  tenantA: string;
  tenantB: string;
  keys: ApiKeyService;
  close(): Promise<void>;
}

/**
 * Boots the whole app on port 0 with the jest worker's migrated database in the e2e tier (see
 * worker-database.ts; in-memory PGlite elsewhere, or when `env` names DATABASE_URL or DATA_DIR), the
 * local Redis under a unique key prefix (deleted by `close()` unless `env.REDIS_KEY_PREFIX` names
 * one), and the engine given by `env.INFERENCE_ENDPOINTS` (tests pass a simulator they control) or an
 * in-process simulator with no sleeping. `imports` adds modules (e.g. one listing a test `@Agent`).
 */
export async function startTestApp(env: Env = {}, imports: ModuleMetadata['imports'] = []): Promise<TestApp> {
  const prefix = `kvchat-test-${randomUUID()}:`;
  const running = await createApp(
    {
      ...testDatabase(env),
      EMBEDDED_DB_PORT: '0',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      LOG_FORMAT: 'json',
      NODE_ENV: 'test',
      SIMULATOR_TIME_SCALE: '0',
      API_KEY_CACHE_SECONDS: '0',
      // A loaded CI machine can stall the event loop past the 2 s default; outage suites set their own bound.
      REDIS_COMMAND_TIMEOUT_MS: '10000',
      REDIS_KEY_PREFIX: prefix,
      ...env,
    },
    { port: 0, host: '127.0.0.1', imports },
  );
  const keys = running.app.get(ApiKeyService);
  const suffix = randomUUID().slice(0, 8);
  const a = await keys.create(`tenant-a-${suffix}`);
  const b = await keys.create(`tenant-b-${suffix}`);
  return {
    url: running.url,
    running,
    keyA: a.key,
    keyB: b.key,
    tenantA: a.tenantId,
    tenantB: b.tenantId,
    keys,
    close: async () => {
      await running.close();
      // A prefix the test chose may be shared with another instance it still needs: the test deletes it.
      if (env.REDIS_KEY_PREFIX === undefined) await deleteRedisPrefix(prefix);
    },
  };
}

/**
 * Where a test app's data goes: the worker's database (already migrated, so not migrated again at boot)
 * unless `env` chooses (DATABASE_URL, or DATA_DIR for the embedded database), else an in-memory PGlite of
 * the app's own.
 */
export function testDatabase(env: Env): Env {
  if (env.DATABASE_URL !== undefined || env.DATA_DIR !== undefined) return {};
  const url = workerDatabaseUrl();
  // The worker's database was migrated by the e2e global setup: its apps skip the check at boot.
  return url ? { DATABASE_URL: url, DB_MIGRATE_ON_BOOT: 'false' } : { DATA_DIR: 'memory://' };
}

/** JSON request helper over fetch: returns status, headers and the parsed body. */
export async function api<T = any>(
  url: string,
  options: {
    method?: string;
    key?: string;
    body?: unknown;
    headers?: Record<string, string>;
    signal?: AbortSignal;
  } = {},
): Promise<{ status: number; headers: Headers; body: T }> {
  const response = await fetch(url, {
    method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
    headers: {
      ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(options.key ? { authorization: `Bearer ${options.key}` } : {}),
      ...options.headers,
    },
    body:
      options.body === undefined
        ? undefined
        : typeof options.body === 'string'
          ? options.body
          : JSON.stringify(options.body),
    signal: options.signal,
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON (SSE, HTML): keep the text
  }
  return { status: response.status, headers: response.headers, body: body as T };
}
