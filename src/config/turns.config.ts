import { IsInt, Max, Min } from 'class-validator';

/** Crash-safe turns (src/conversations): the in-flight record's deadline and the sweeper. */
export class TurnsConfig {
  /**
   * Longest a turn may run, ms, from the moment it holds its conversation: the turn is aborted then
   * (503 `TurnInterrupted`), and a turn still recorded in flight past it (its process died) is
   * stored by the sweeper as a `failed` user message with reason `interrupted`. Keep it above
   * INFERENCE_TIMEOUT_MS so that only a dead process, never a slow engine, reaches it.
   */
  @IsInt() @Min(1000) @Max(3_600_000) TURN_DEADLINE_MS: number = 150_000;
  /** How often the sweeper (a Bull repeatable job, in processes that take jobs) looks for turns past their deadline, seconds. */
  @IsInt() @Min(1) @Max(3600) TURN_SWEEP_INTERVAL_SECONDS: number = 30;
}
