import { IsIn, IsInt, Min } from 'class-validator';

/** What a kvchat process runs: its role (one image, several roles) and how it shuts down. */
export type ProcessRole = 'all' | 'api' | 'worker';

/** Process role and graceful shutdown (src/lifecycle). */
export class ProcessConfig {
  /**
   * `all` (default, `npm start`): HTTP API and job processors in one process. `api`: the HTTP API;
   * jobs are queued for workers, never processed here. `worker`: the Bull job processors of every
   * queue (summaries, and any queue registered with `queueProcessor`), serving only /health and
   * /metrics over HTTP. `api` and `worker` share PostgreSQL and Redis, so both need DATABASE_URL.
   */
  @IsIn(['all', 'api', 'worker']) KVCHAT_ROLE: ProcessRole = 'all';
  /**
   * After SIGTERM/SIGINT: readiness turns 503 at once, and the process keeps serving what is in flight
   * for at most this long before it closes, ms. Keep it below the orchestrator's grace period
   * (Kubernetes' terminationGracePeriodSeconds, 30 s by default; the chart sets it above this).
   */
  @IsInt() @Min(0) SHUTDOWN_DRAIN_MS: number = 20_000;
}
