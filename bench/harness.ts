import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { createApp, type RunningApp } from '../src/app.factory';
import { ApiKeyService } from '../src/auth/api-key.service';
import type { Env } from '../src/config/config.loader';
import { deleteRedisPrefix } from './redis-prefix';

/** A kvchat started in this process for a benchmark, with a fresh tenant and key. */
export interface BenchInstance {
  url: string;
  apiKey: string;
  tenantId: string;
  running: RunningApp;
  /** Creates another tenant's key on the same instance. */
  newKey(tenant: string, admin?: boolean): Promise<string>;
  close(): Promise<void>;
}

/**
 * Starts kvchat on the embedded defaults (in-memory PGlite, in-process simulator, any free
 * ports) with `env` overrides, and creates a tenant key. Redis must run on REDIS_URL. `close()` stops it
 * and deletes the Redis keys under its own fresh prefix (not under one `env.REDIS_KEY_PREFIX` chose).
 */
export async function startBenchInstance(env: Env = {}, tenant = 'bench'): Promise<BenchInstance> {
  const ownPrefix = `kvchat-bench-${process.pid}-${Date.now()}:`;
  const running = await createApp(
    {
      DATA_DIR: 'memory://',
      EMBEDDED_DB_PORT: '0',
      LOG_LEVEL: 'warn',
      LOG_FORMAT: 'json',
      REDIS_KEY_PREFIX: ownPrefix,
      ...env,
    },
    { port: 0, host: '127.0.0.1' },
  );
  const keys = running.app.get(ApiKeyService);
  const created = await keys.create(`${tenant}-${Date.now()}`, { admin: true });
  return {
    url: running.url,
    apiKey: created.key,
    tenantId: created.tenantId,
    running,
    newKey: async (name, admin = false) => (await keys.create(`${name}-${Date.now()}`, { admin })).key,
    close: async () => {
      await running.close();
      if (env.REDIS_KEY_PREFIX === undefined) {
        await deleteRedisPrefix(
          ownPrefix,
          env.REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
        );
      }
    },
  };
}

/** Reads a JSONL file: one JSON value a line, blank lines skipped. */
export async function readJsonl<T>(path: string): Promise<T[]> {
  const rows: T[] = [];
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim()) rows.push(JSON.parse(line) as T);
  }
  return rows;
}

/** The q-quantile (0..1) of `values` by linear interpolation; NaN for an empty list. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Rounds to `digits` decimals for reports; non-finite values (NaN for an empty set) pass through. */
export function round(x: number, digits = 2): number {
  return Number.isFinite(x) ? Number(x.toFixed(digits)) : x;
}
