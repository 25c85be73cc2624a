import Redis from 'ioredis';

/** Deletes every key under `prefix` on the local Redis (SCAN, never KEYS or FLUSH*): a suite's own keys only. */
export async function deleteRedisPrefix(prefix: string, url = 'redis://127.0.0.1:6379'): Promise<void> {
  if (prefix.length < 8) throw new Error(`refusing to delete under a short prefix ${JSON.stringify(prefix)}`);
  const redis = new Redis(url);
  try {
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (found.length > 0) await redis.del(...found);
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
}
