import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import Redlock, { ExecutionError } from 'redlock';
import { RedisConfig } from '../config/redis.config';
import { REDIS } from '../redis/redis.module';
import { ConversationBusy } from './conversation.errors';

/**
 * Serialises the turns of one conversation across every API replica with a Redis lock
 * (Redlock, single instance), auto-extended while the turn runs. A second turn waits for the
 * first (up to `waitMs`), so it sees the first turn's answer in its history.
 */
@Injectable()
export class TurnLockService {
  private readonly redlock: Redlock;
  /** Longest a turn waits for the conversation, ms. */
  readonly waitMs = 180_000;
  private static readonly lockMs = 15_000;
  private static readonly retryDelayMs = 40;

  constructor(
    @Inject(REDIS) redis: Redis,
    private readonly config: RedisConfig,
  ) {
    this.redlock = new Redlock([redis], {
      retryCount: Math.ceil(this.waitMs / TurnLockService.retryDelayMs),
      retryDelay: TurnLockService.retryDelayMs,
      retryJitter: 20,
      automaticExtensionThreshold: 2_000,
    });
  }

  /**
   * Runs `routine` holding the conversation's lock.
   * @throws ConversationBusy when the lock is not obtained within waitMs
   */
  async withConversation<T>(
    conversationId: string,
    routine: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const resource = `${this.config.REDIS_KEY_PREFIX}lock:conversation:${conversationId}`;
    try {
      return await this.redlock.using([resource], TurnLockService.lockMs, routine);
    } catch (e) {
      if (e instanceof ExecutionError) {
        throw new ConversationBusy(`Conversation ${conversationId} is busy with another turn; try again.`);
      }
      throw e;
    }
  }
}
