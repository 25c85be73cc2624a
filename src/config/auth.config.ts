import { Transform } from 'class-transformer';
import { IsBoolean, IsInt, IsOptional, Matches, Max, Min } from 'class-validator';
import { toBoolean } from './config.loader';

/** API keys and rate limits: rotation, the limiter's Redis, its deadline and failure mode, per-IP limits. */
export class AuthConfig {
  /** How long a rotated-out key keeps working when `POST /v1/admin/keys/{id}/rotate` names no grace period, seconds. */
  @IsInt() @Min(0) API_KEY_ROTATION_GRACE_SECONDS: number = 3600;
  /**
   * Redis of the rate limiter and budget counters (rpm, tpm, budgets per key, tenant and IP). Unset =
   * REDIS_URL. Limits hold across replicas because every replica counts here.
   */
  @IsOptional()
  @Matches(/^rediss?:\/\//, { message: 'must be a redis:// or rediss:// URL' })
  RATE_LIMIT_REDIS_URL?: string;
  /** Deadline of one limiter call to Redis on the request path, ms; past it the limiter fails open or closed. */
  @IsInt() @Min(1) @Max(10_000) RATE_LIMIT_REDIS_TIMEOUT_MS: number = 150;
  /**
   * When the limiter's Redis is down or slow: true = let requests through unlimited (logged, counted in
   * `kvchat_rate_limiter_failures_total`); false = answer 503 `RateLimiterUnavailable` with Retry-After.
   */
  @Transform(toBoolean) @IsBoolean() RATE_LIMIT_FAIL_OPEN = true;
  /**
   * Requests per minute per client IP without a valid API key (rejected keys, public routes other than
   * /health and /metrics); 0 = unlimited. Protects key verification from guessing and floods.
   */
  @IsInt() @Min(0) RATE_LIMIT_IP_PER_MINUTE: number = 600;
}
