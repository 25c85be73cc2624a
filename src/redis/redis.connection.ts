import Redis, { type RedisOptions } from 'ioredis';

/** Thrown at boot when Redis cannot be reached; names the URL (without its password). */
export class RedisUnreachable extends Error {
  readonly code = 'RedisUnreachable';
  constructor(url: string, cause: unknown) {
    super(
      `Redis is unreachable at ${redactUrl(url)}: ${cause instanceof Error ? cause.message : String(cause)}. ` +
        'Start Redis or set REDIS_URL.',
    );
    this.name = 'RedisUnreachable';
  }
}

/** Replaces the password of a URL with `***` for logs and errors. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable url>';
  }
}

/**
 * The one place kvchat opens Redis connections: the app's shared client and Bull's
 * client/subscriber/bclient all come from here, so TLS, naming and retry policy stay in one spot.
 *
 * @param role `client` (commands, may be shared), `subscriber` or `bclient` (Bull: dedicated,
 *   no ready check and unlimited retries per request, as Bull requires).
 */
export function createRedisConnection(
  url: string,
  role: 'client' | 'subscriber' | 'bclient' = 'client',
): Redis {
  const options: RedisOptions = {
    connectionName: `kvchat:${role}`,
    lazyConnect: false,
  };
  if (role !== 'client') {
    // Bull's documented requirement for its blocking and subscriber connections.
    options.enableReadyCheck = false;
    options.maxRetriesPerRequest = null;
  } else {
    options.maxRetriesPerRequest = 3;
  }
  return new Redis(url, options);
}

/**
 * Opens the shared request-path client and proves it answers PING within `timeoutMs`. It fails
 * fast rather than wait for Redis: no offline queue (a command while disconnected fails at once),
 * one retry of a command cut by a dropped connection, every command bounded by `commandTimeoutMs`;
 * reconnection goes on in the background every <= 2 s. Callers map such failures to 503
 * `DependencyUnavailable` (src/common/dependency-errors.ts).
 * @throws RedisUnreachable naming the URL
 */
export async function connectRedisOrFail(
  url: string,
  timeoutMs = 3000,
  commandTimeoutMs = 2000,
): Promise<Redis> {
  const client = new Redis(url, {
    connectionName: 'kvchat:client',
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs,
    connectTimeout: timeoutMs,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
  // Before the first successful connect, errors are reported through connect(); silence the emitter.
  const swallow = (): void => undefined;
  client.on('error', swallow);
  try {
    await client.connect();
    await client.ping();
  } catch (e) {
    client.disconnect();
    throw new RedisUnreachable(url, e);
  }
  client.off('error', swallow);
  return client;
}

/**
 * A connection for request-path calls that must fail fast rather than wait for Redis: no offline
 * queue (a command while disconnected fails at once), no per-command retries, reconnection in the
 * background every ≤ 1 s. Used by the rate limiter, which fails open or closed on such a failure.
 * Errors are logged by the caller through `onError` (throttled there); never unhandled.
 */
export function createFailFastConnection(url: string, name: string, onError: (e: Error) => void): Redis {
  const client = new Redis(url, {
    connectionName: `kvchat:${name}`,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    retryStrategy: (times) => Math.min(times * 100, 1000),
  });
  client.on('error', onError);
  return client;
}
