import { Transform } from 'class-transformer';
import { IsBoolean } from 'class-validator';
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
}
