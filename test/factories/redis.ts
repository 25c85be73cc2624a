import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import Redis from 'ioredis';

/** The local Redis every suite shares (REDIS_URL, as the app reads it). */
export const LOCAL_REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Deletes every key under `prefix` on the local Redis: a suite's own keys only (SCAN + UNLINK, never
 * KEYS or FLUSH*, so other suites and agents sharing the server are untouched). Every suite gives its
 * apps a fresh prefix and calls this when it is done.
 */
export async function deleteRedisPrefix(prefix: string, url = LOCAL_REDIS): Promise<void> {
  if (prefix.length < 8) throw new Error(`refusing to delete under a short prefix ${JSON.stringify(prefix)}`);
  const redis = new Redis(url);
  try {
    const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (found.length > 0) await redis.unlink(...found);
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
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
