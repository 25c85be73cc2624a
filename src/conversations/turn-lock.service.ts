import { Inject, Injectable, Logger } from '@nestjs/common';
import type Redis from 'ioredis';
import Redlock, { ExecutionError, type Lock, ResourceLockedError } from 'redlock';
import { DependencyUnavailable } from '../common/dependency-errors';
import { RedisConfig } from '../config/redis.config';
import { RequestAborted } from '../inference/inference.errors';
import { REDIS } from '../redis/redis.module';
import { ConversationBusy } from './conversation.errors';

/**
 * Serialises the turns of one conversation across every API replica with a Redis lock (Redlock,
 * single instance). A second turn waits for the first (up to TURN_LOCK_WAIT_MS), so it sees the
 * first turn's answer in its history.
 *
 * The lock is a short lease (TURN_LOCK_LEASE_MS, 5 s) that the running turn renews every
 * TURN_LOCK_RENEW_MS (1 s) with Redlock's `extend`, so a holder that dies without releasing (SIGKILL)
 * blocks its conversation for at most one lease, while a live holder keeps it through renewals that
 * fail or stall for up to lease − renew (4 s).
 *
 * The lock never changes a turn's outcome once it runs: a failed renewal is logged, not thrown (the
 * next one is tried while the lease lasts), and the release runs in the background after the turn (a
 * failed release lets the lease lapse). Only acquiring can fail a turn: 409 when the conversation is
 * really busy, 503 naming Redis at once when Redis does not answer.
 */
@Injectable()
export class TurnLockService {
  private readonly logger = new Logger(TurnLockService.name);
  private readonly redlock: Redlock;
  /** Longest a turn waits for the conversation, ms (TURN_LOCK_WAIT_MS). */
  readonly waitMs: number;
  /** Lease of the lock, ms (TURN_LOCK_LEASE_MS): set at acquire and at each renewal. */
  private readonly leaseMs: number;
  /** Pause between renewals while the turn runs, ms (TURN_LOCK_RENEW_MS). */
  private readonly renewMs: number;
  private static readonly retryDelayMs = 40;

  constructor(
    @Inject(REDIS) redis: Redis,
    private readonly config: RedisConfig,
  ) {
    this.waitMs = config.TURN_LOCK_WAIT_MS;
    this.leaseMs = config.TURN_LOCK_LEASE_MS;
    this.renewMs = config.TURN_LOCK_RENEW_MS;
    // Release and renewal: one attempt each; the next renewal, or the lease's expiry, covers a failure.
    this.redlock = new Redlock([redis], { retryCount: 0, retryDelay: TurnLockService.retryDelayMs });
    // Redlock reports each failed attempt here; contention is expected, anything else is logged at the caller.
    this.redlock.on('error', () => undefined);
  }

  /**
   * Runs `routine` holding the conversation's lock.
   * @param signal the client's: when it aborts while the turn waits for the lock, the turn does not run
   * @throws ConversationBusy (409, `retryAfterSeconds`) when another turn holds the lock for longer than waitMs
   * @throws DependencyUnavailable (503, `dependency: 'redis'`) when Redis does not answer
   * @throws RequestAborted when `signal` aborted before the lock was obtained
   */
  async withConversation<T>(
    conversationId: string,
    routine: () => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    const resource = `${this.config.REDIS_KEY_PREFIX}lock:conversation:${conversationId}`;
    const lock = await this.acquire(resource, conversationId);
    if (signal?.aborted) {
      this.release(lock);
      throw new RequestAborted('The client went away while the turn waited for its conversation.');
    }
    let current = lock;
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const renew = (): void => {
      timer = setTimeout(() => {
        current
          .extend(this.leaseMs)
          .then((extended) => {
            current = extended;
            if (!done) renew();
          })
          .catch((e: unknown) => {
            this.logger.warn(`turn lock of ${conversationId} not renewed: ${(e as Error).message}`);
            if (!done && current.expiration > Date.now()) renew();
          });
      }, this.renewMs);
      timer.unref();
    };
    renew();
    try {
      return await routine();
    } finally {
      done = true;
      clearTimeout(timer);
      this.release(current);
    }
  }

  /** One fast attempt; on contention, waits up to waitMs. Classifies the failure. */
  private async acquire(resource: string, conversationId: string): Promise<Lock> {
    const waits = [0, Math.ceil(this.waitMs / TurnLockService.retryDelayMs)];
    for (const retryCount of waits) {
      try {
        return await this.redlock.acquire([resource], this.leaseMs, {
          retryCount,
          retryDelay: TurnLockService.retryDelayMs,
          retryJitter: 20,
        });
      } catch (e) {
        if (!(e instanceof ExecutionError)) throw e;
        if (!(await TurnLockService.heldByAnother(e))) throw new DependencyUnavailable('redis');
        if (retryCount === 0 && this.waitMs > 0) continue;
      }
    }
    throw new ConversationBusy(`Conversation ${conversationId} is busy with another turn; try again.`, {
      retryAfterSeconds: 1,
    });
  }

  /** Did the last attempt fail only because the lock is held (rather than Redis not answering)? */
  private static async heldByAnother(e: ExecutionError): Promise<boolean> {
    const last = await e.attempts.at(-1);
    const errors = last ? [...last.votesAgainst.values()] : [];
    return errors.length > 0 && errors.every((err) => err instanceof ResourceLockedError);
  }

  /** Releases in the background: the answer never waits for it, and a failure only leaves the lock to expire. */
  private release(lock: Lock): void {
    lock.release().catch((e: unknown) => {
      this.logger.warn(
        `turn lock not released (its lease lapses in ≤ ${this.leaseMs} ms): ${(e as Error).message}`,
      );
    });
  }
}
