import { type SimulatorTiming } from './simulator.options';

/** Where the prompt tokens of one request come from, in tokens. */
export interface PromptSources {
  /** Tokens computed on the GPU (not cached anywhere). */
  uncachedTokens: number;
  /** Tokens loaded from LMCache's CPU tier. */
  cpuTokens: number;
  /** Tokens loaded from LMCache's remote tier. */
  remoteTokens: number;
}

/** The model's prefill cost of one request, in unscaled ms, and its parts. */
export interface PrefillCost {
  overheadMs: number;
  computeMs: number;
  cpuLoadMs: number;
  remoteLoadMs: number;
  /** Sum of the above: what the GPU spends on this request before its first token. */
  totalMs: number;
}

/**
 * The prefill part of the timing model:
 * overhead + uncached tokens x prefill cost + CPU tokens x CPU load cost + remote tokens x remote
 * load cost. TTFT adds the time spent waiting (for a batch slot, and behind other prefills for the
 * GPU) and any injected stall to this.
 */
export function prefillCost(sources: PromptSources, timing: SimulatorTiming): PrefillCost {
  const computeMs = sources.uncachedTokens * timing.prefillMsPerToken;
  const cpuLoadMs = sources.cpuTokens * timing.cpuLoadMsPerToken;
  const remoteLoadMs = sources.remoteTokens * timing.remoteLoadMsPerToken;
  return {
    overheadMs: timing.overheadMs,
    computeMs,
    cpuLoadMs,
    remoteLoadMs,
    totalMs: timing.overheadMs + computeMs + cpuLoadMs + remoteLoadMs,
  };
}

/**
 * Decode time, unscaled ms: the first token arrives with the prefill, each further one after an
 * inter-token latency, so `outputTokens` tokens take (outputTokens - 1) x ITL after the first.
 */
export function decodeMs(outputTokens: number, timing: SimulatorTiming): number {
  return Math.max(0, outputTokens - 1) * timing.itlMs;
}

/** Model ms -> wall-clock ms under the time scale. */
export function scaled(ms: number, timing: SimulatorTiming): number {
  return ms * timing.timeScale;
}

/**
 * One GPU computes one prefill at a time: the recompute of requests admitted together queues here
 * (vLLM's token budget per step makes concurrent prefills share the GPU; serializing them gives
 * the same total). This is what turns the calibrated 0.051 ms/token, an aggregate throughput, into
 * the ~0.76 s mean TTFT measured with 4 requests of 10,000 tokens in flight. The fixed overhead,
 * KV loads from LMCache and decode do not wait here. Times are wall-clock ms from `now()`.
 */
export class PrefillLane {
  private busyUntil = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Books `durationMs` of GPU time; returns when it starts and ends (wall-clock ms). */
  book(durationMs: number): { startAt: number; endAt: number } {
    const startAt = Math.max(this.now(), this.busyUntil);
    const endAt = startAt + durationMs;
    this.busyUntil = endAt;
    return { startAt, endAt };
  }
}

/** Thrown by `sleepUntil` when the signal aborts. */
export class AbortedError extends Error {
  constructor() {
    super('request aborted');
    this.name = 'AbortedError';
  }
}

/** Resolves at wall-clock `deadline` (ms, `performance.now()` clock); rejects on abort. */
export function sleepUntil(deadline: number, signal?: AbortSignal): Promise<void> {
  return sleepMs(deadline - performance.now(), signal);
}

/** Resolves after `ms` wall-clock ms (0 or less: next macrotask); rejects on abort. */
export function sleepMs(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(new AbortedError());
  if (ms <= 0) {
    // Still yield (so aborts and other requests get a turn), without the timer's ~1 ms floor.
    return new Promise((resolve, reject) =>
      setImmediate(() => (signal?.aborted ? reject(new AbortedError()) : resolve())),
    );
  }
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new AbortedError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
