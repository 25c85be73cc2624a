import { IsInt, Min } from 'class-validator';

/** Readiness (`GET /health/ready`, src/health). */
export class HealthConfig {
  /**
   * Engine replicas that must answer for the process to be ready. 1 (default): ready while any
   * replica can serve, since the router skips dead ones; raise it to take pods out of the Service
   * when capacity falls below what they need.
   */
  @IsInt() @Min(0) HEALTH_READY_MIN_ENGINES: number = 1;
  /** Timeout of each readiness check (database, Redis, each engine replica, queues), ms. */
  @IsInt() @Min(50) HEALTH_CHECK_TIMEOUT_MS: number = 2000;
}
