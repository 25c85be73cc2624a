import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import Redis from 'ioredis';
import { deleteRedisPrefix as deletePrefix } from '../../bench/redis-prefix';

/** The local Redis every suite shares (REDIS_URL, as the app reads it). */
export const LOCAL_REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Deletes every key under `prefix` on the local Redis (bench/redis-prefix.ts: SCAN + UNLINK
 * of that prefix only). Every suite gives its apps a fresh prefix and calls this when it is done.
 */
export function deleteRedisPrefix(prefix: string, url = LOCAL_REDIS): Promise<void> {
  return deletePrefix(prefix, url);
}

/** A free TCP port on the loopback interface (nothing listens on it once this returns). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

/** A redis-server of a test's own, on `port` (default a free one), without persistence: a test may stop it. */
export async function startOwnRedis(port?: number): Promise<{ url: string; process: ChildProcess }> {
  port ??= await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  const url = `redis://127.0.0.1:${port}`;
  // The offline queue holds the PING until the server accepts connections.
  const probe = new Redis(url, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
  probe.on('error', () => undefined);
  await probe.ping();
  probe.disconnect();
  return { url, process: child };
}
