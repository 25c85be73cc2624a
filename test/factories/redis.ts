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

/**
 * A redis-server of a test's own, on `port` (default a free one), without persistence: a test may stop it.
 * The server that answers is checked to be the one started here (its `process_id`): a free port can be
 * taken by another suite's server between the probe and the start, and then this one never listens.
 */
export async function startOwnRedis(port?: number): Promise<{ url: string; process: ChildProcess }> {
  const fixed = port;
  for (let attempt = 1; ; attempt++) {
    const candidate = fixed ?? (await freePort());
    const child = spawn(
      'redis-server',
      ['--port', String(candidate), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    const url = `redis://127.0.0.1:${candidate}`;
    // The offline queue holds the INFO until a server accepts connections on the port.
    const probe = new Redis(url, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
    probe.on('error', () => undefined);
    const exited = once(child, 'exit').then(
      () => 'exited' as const,
      () => 'failed to spawn' as const,
    );
    const answered = probe
      .info('server')
      .then((info) => /process_id:(\d+)/.exec(info)?.[1])
      .catch(() => 'no answer');
    const outcome = await Promise.race([answered, exited]);
    probe.disconnect();
    if (outcome === String(child.pid)) return { url, process: child };
    if (child.exitCode === null) child.kill('SIGKILL');
    if (fixed !== undefined || attempt >= 5)
      throw new Error(
        `redis-server did not start on port ${candidate} (attempt ${attempt}: ${String(outcome)})`,
      );
  }
}
