import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import { REDIS } from '../redis/redis.module';

/** Deletes the lock only if we still own it. */
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/** Extends the lock only if we still own it. */
const EXTEND_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;

/** A held single-flight lock. */
export interface FlightLock {
  /** Releases the lock (idempotent). */
  release(): Promise<void>;
}

/**
 * Single flight for identical cache misses: only one engine call answers a question while others
 * asking the same thing wait for its stored answer.
 *
 * Two levels: within a process, concurrent callers with the same key share one promise
 * (`coalesce`); across API replicas, the first to `SET NX` a Redis lock calls the engine and the
 * others poll for the stored entry (`waitFor`) until it appears, the lock disappears (the leader
 * failed or its answer was not cacheable) or the wait times out. The lock is extended while the
 * leader works, so a long generation does not let a second leader in.
 */
@Injectable()
export class SingleFlight {
  private readonly inFlight = new Map<string, Promise<unknown>>();
  /** Lock lifetime without renewal, ms; renewed every third of it. */
  static readonly lockMs = 15_000;
  /** First and largest poll interval of a waiting follower, ms. */
  static readonly pollMs = { first: 20, max: 250 };

  constructor(@Inject(REDIS) private readonly redis: Redis) {}

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

  /** Tries to take the cross-replica lock `key`; null when another caller holds it. */
  async acquire(key: string): Promise<FlightLock | null> {
    const token = randomUUID();
    const ok = await this.redis.set(key, token, 'PX', SingleFlight.lockMs, 'NX');
    if (ok !== 'OK') return null;
    const timer = setInterval(() => {
      this.redis.eval(EXTEND_SCRIPT, 1, key, token, String(SingleFlight.lockMs)).catch(() => undefined);
    }, SingleFlight.lockMs / 3);
    timer.unref();
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(timer);
        await this.redis.eval(RELEASE_SCRIPT, 1, key, token).catch(() => undefined);
      },
    };
  }

  /**
   * Waits while another caller holds `key`, polling `check` for its result.
   * @returns the result, or null when the lock went away without one, the wait timed out or `signal` fired
   */
  async waitFor<T>(
    key: string,
    check: () => Promise<T | null>,
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
      if ((await this.redis.exists(key)) === 0) return check();
      interval = Math.min(interval * 2, SingleFlight.pollMs.max);
    }
    return null;
  }
}
