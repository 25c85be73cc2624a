import { Injectable } from '@nestjs/common';

/**
 * Single flight for identical cache misses: only one engine call answers a question while others
 * asking the same thing wait for its stored answer.
 *
 * Two levels: within a process, concurrent callers with the same key share one promise
 * (`coalesce`); across API replicas, the first to take the store's lock
 * (`ResponseCacheStore.acquireFlight`) calls the engine and the others poll for the stored entry
 * (`waitFor`) until it appears, the lock disappears (the leader failed or its answer was not
 * cacheable) or the wait times out.
 */
@Injectable()
export class SingleFlight {
  private readonly inFlight = new Map<string, Promise<unknown>>();
  /** First and largest poll interval of a waiting follower, ms. */
  static readonly pollMs = { first: 20, max: 250 };

  /**
   * Runs `work` once per key among concurrent callers of this process.
   * @returns the shared promise and whether this caller started it
   */
  coalesce<T>(key: string, work: () => Promise<T>): { promise: Promise<T>; leader: boolean } {
    const existing = this.inFlight.get(key) as Promise<T> | undefined;
    if (existing) return { promise: existing, leader: false };
    const promise = work().finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, promise);
    return { promise, leader: true };
  }

  /**
   * Waits while another caller holds the lock (`held`), polling `check` for its result with a
   * doubling interval (SingleFlight.pollMs).
   * @returns the result, or null when the lock went away without one, the wait timed out or `signal` fired
   */
  async waitFor<T>(
    check: () => Promise<T | null>,
    held: () => Promise<boolean>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<T | null> {
    const deadline = Date.now() + timeoutMs;
    let interval = SingleFlight.pollMs.first;
    while (Date.now() < deadline && !signal?.aborted) {
      await new Promise((resolve) =>
        setTimeout(resolve, Math.min(interval, Math.max(0, deadline - Date.now()))),
      );
      const result = await check();
      if (result !== null) return result;
      if (!(await held())) return check();
      interval = Math.min(interval * 2, SingleFlight.pollMs.max);
    }
    return null;
  }
}
