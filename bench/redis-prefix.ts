import Redis from 'ioredis';

/**
 * Deletes every key under `prefix` on the Redis at `url`: one instance's own keys only (SCAN + UNLINK,
 * never KEYS or FLUSH*, so others sharing the server are untouched). Benchmarks and test suites give their
 * apps a fresh prefix and call this when done.
 * @throws Error for a prefix shorter than 8 characters (it could match someone else's keys), or Redis's error
 */
export async function deleteRedisPrefix(prefix: string, url: string): Promise<void> {
  if (prefix.length < 8) throw new Error(`refusing to delete under a short prefix ${JSON.stringify(prefix)}`);
  const redis = new Redis(url);
  try {
    const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    for await (const keys of redis.scanStream({ match: pattern, count: 1000 }) as AsyncIterable<string[]>) {
      if (keys.length > 0) await redis.unlink(...keys);
    }
  } finally {
    await redis.quit();
  }
}
