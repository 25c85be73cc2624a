import { IsInt, Max, Min } from 'class-validator';

/**
 * Admission control and load shedding of turns, per process (src/lifecycle/turn-admission.service.ts):
 * at most TURNS_MAX_IN_FLIGHT turns run at once, at most TURNS_MAX_QUEUED wait for a slot, each for at
 * most TURN_QUEUE_TIMEOUT_MS; anything beyond is a fast 503 `Overloaded` with `Retry-After`.
 * A turn is `POST /v1/conversations/:id/turns` or `POST /v1/chat/completions`.
 */
export class AdmissionConfig {
  /**
   * Turns running at once in this process. Size it as the turns/s one process serves × the p99 turn
   * duration in seconds (a streamed answer mostly waits on the engine), with headroom; see docs/scaling.md.
   */
  @IsInt() @Min(1) TURNS_MAX_IN_FLIGHT: number = 64;
  /** Turns waiting for a slot; beyond this a turn is shed at once (503 `Overloaded`). 0 = no queue. */
  @IsInt() @Min(0) TURNS_MAX_QUEUED: number = 64;
  /** Longest a turn waits in the queue, ms; then it is shed. Keep it well below clients' own timeouts. */
  @IsInt() @Min(1) @Max(60_000) TURN_QUEUE_TIMEOUT_MS: number = 1000;
  /** `Retry-After` of a shed turn, seconds. */
  @IsInt() @Min(1) @Max(3600) TURN_SHED_RETRY_AFTER_SECONDS: number = 1;
}
