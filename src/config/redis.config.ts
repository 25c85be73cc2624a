import { IsInt, IsString, Matches, Max, Min } from 'class-validator';

/** Redis (src/redis): the shared client, key prefix, and how long the request path waits for it. */
export class RedisConfig {
  @Matches(/^rediss?:\/\//, { message: 'must be a redis:// or rediss:// URL' })
  REDIS_URL = 'redis://127.0.0.1:6379';
  /** Prefix of every key kvchat writes (several deployments can share one Redis). */
  @IsString() REDIS_KEY_PREFIX = 'kvchat:';
  /**
   * Longest a request-path Redis command waits, ms. While Redis is down, commands fail at once
   * (no offline queue); a command that hangs fails after this, and the request answers
   * 503 `DependencyUnavailable` naming `redis` with `Retry-After`.
   */
  @IsInt() @Min(50) @Max(60_000) REDIS_COMMAND_TIMEOUT_MS: number = 2000;
  /**
   * Longest a turn waits for its conversation while another turn holds it, ms; then 409
   * `ConversationBusy` with `Retry-After`. Only real contention waits: a Redis failure is a 503 at once.
   */
  @IsInt() @Min(0) @Max(600_000) TURN_LOCK_WAIT_MS: number = 30_000;
  /**
   * Lease of a conversation's turn lock, ms: the longest the lock outlives a holder that died without
   * releasing it (SIGKILL, OOM kill, a lost host), so the next turn on that conversation runs at most this
   * long after the crash. A running turn renews it every TURN_LOCK_RENEW_MS.
   */
  @IsInt() @Min(1000) @Max(600_000) TURN_LOCK_LEASE_MS: number = 5000;
  /**
   * How often a running turn renews its lock's lease, ms; at most half of TURN_LOCK_LEASE_MS. A live
   * holder loses the lock only when renewals stop for TURN_LOCK_LEASE_MS − TURN_LOCK_RENEW_MS (4 s by
   * default: an event loop stalled that long, or Redis unreachable that long).
   */
  @IsInt() @Min(100) @Max(300_000) TURN_LOCK_RENEW_MS: number = 1000;
}
