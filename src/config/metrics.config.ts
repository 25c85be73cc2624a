import { Transform } from 'class-transformer';
import { IsBoolean, IsInt, IsOptional, IsString, Max, Min, MinLength } from 'class-validator';
import { toBoolean } from './config.loader';

/** Prometheus metrics served at `GET /metrics`. */
export class MetricsConfig {
  /** Node.js process metrics (CPU, memory, event loop lag, GC) next to kvchat's own. */
  @Transform(toBoolean) @IsBoolean() METRICS_PROCESS = true;
  /**
   * Add a `tenant` label (the tenant id, never its name) to turn and token counters. Off by default:
   * every tenant multiplies those series; turn it on only with a bounded number of tenants.
   */
  @Transform(toBoolean) @IsBoolean() METRICS_TENANT_LABEL = false;
  /**
   * Serve `GET /metrics`. Unset = on in development and test; in production only when METRICS_PORT or
   * METRICS_BEARER_TOKEN is set (true in production without either stops the boot).
   */
  @IsOptional() @Transform(toBoolean) @IsBoolean() METRICS_ENABLED?: boolean;
  /** Serve `/metrics` on this port (same HOST) instead of the API port; 0 = any free port. Unset = the API port. */
  @IsOptional() @IsInt() @Min(0) @Max(65535) METRICS_PORT?: number;
  /** Require `Authorization: Bearer <this>` on `/metrics` (at least 16 chars; never logged). Unset = no token. */
  @IsOptional() @IsString() @MinLength(16) METRICS_BEARER_TOKEN?: string;
}
