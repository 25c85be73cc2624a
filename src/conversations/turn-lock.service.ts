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
 * The lock never changes a turn's outcome once it runs: it is extended in the background while the
 * turn runs (a failed extension is logged, not thrown), and released in the background after it (a
 * failed release lets the lock expire after `lockMs`). Only acquiring can fail a turn: 409 when the
 * conversation is really busy, 503 naming Redis at once when Redis does not answer.
 */
@Injectable()
export class TurnLockService {
  private readonly logger = new Logger(TurnLockService.name);
  private readonly redlock: Redlock;
  /** Longest a turn waits for the conversation, ms (TURN_LOCK_WAIT_MS). */
  readonly waitMs: number;
  /**
   * Lock lifetime, ms; extended every `lockMs - extendBeforeMs` (10 s) while the turn runs, so an event
   * loop stalled for up to 20 s (a starved CPU) still extends it in time.
   */
  private static readonly lockMs = 30_000;
  private static readonly extendBeforeMs = 20_000;
  private static readonly retryDelayMs = 40;

  constructor(
    @Inject(REDIS) redis: Redis,
    private readonly config: RedisConfig,
  ) {
    this.waitMs = config.TURN_LOCK_WAIT_MS;
    // Release and extension: one attempt each; the lock's expiry covers a failure.
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
    const extend = (): void => {
      timer = setTimeout(() => {
        current
          .extend(TurnLockService.lockMs)
          .then((extended) => {
            current = extended;
            extend();
          })
          .catch((e: unknown) => {
            this.logger.warn(`turn lock of ${conversationId} not extended: ${(e as Error).message}`);
            if (current.expiration > Date.now()) extend();
          });
      }, TurnLockService.lockMs - TurnLockService.extendBeforeMs);
      timer.unref();
    };
    extend();
    try {
      return await routine();
    } finally {
      clearTimeout(timer);
      this.release(current);
    }
  }

  /** One fast attempt; on contention, waits up to waitMs. Classifies the failure. */
  private async acquire(resource: string, conversationId: string): Promise<Lock> {
    const waits = [0, Math.ceil(this.waitMs / TurnLockService.retryDelayMs)];
    for (const retryCount of waits) {
      try {
        return await this.redlock.acquire([resource], TurnLockService.lockMs, {
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
        `turn lock not released (expires in ≤ ${TurnLockService.lockMs} ms): ${(e as Error).message}`,
      );
    });
  }
}
