/** Bull queue of the conversations module's own jobs. */
export const TURNS_QUEUE = 'turns';

/** Job name (repeatable, and once at boot): store turns left in flight past their deadline (TurnSweeper). */
export const TURN_SWEEP_JOB = 'sweep';
