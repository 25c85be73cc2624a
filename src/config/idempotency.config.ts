import { IsInt, Max, Min } from 'class-validator';

/** `Idempotency-Key` on the POST routes that create things (src/idempotency). */
export class IdempotencyConfig {
  /** How long a completed request's result is kept for replay under its key, seconds (default one day). */
  @IsInt() @Min(60) @Max(30 * 86_400) IDEMPOTENCY_TTL_SECONDS: number = 86_400;
  /**
   * Longest a request is considered running under its key, seconds: a process that died mid-request
   * frees the key after this. Longer than any turn.
   */
  @IsInt() @Min(10) @Max(86_400) IDEMPOTENCY_RUNNING_TTL_SECONDS: number = 600;
}
