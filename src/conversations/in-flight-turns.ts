import { Inject, Injectable, Logger } from '@nestjs/common';
import type Redis from 'ioredis';
import { DependencyUnavailable } from '../common/dependency-errors';
import { RedisConfig } from '../config/redis.config';
import { TurnsConfig } from '../config/turns.config';
import { REDIS } from '../redis/redis.module';

/** A turn between its start and its one database write, as recorded in Redis. */
export interface InFlightTurn {
  /** The turn's id: also the id its user message is stored under (so a sweep can tell it was stored). */
  id: string;
  tenantId: string;
  conversationId: string;
  /** The user message as posted. */
  content: string;
  /** When the turn was received, ms since epoch (the stored message's createdAt). */
  receivedAt: number;
  /** Past this (ms since epoch) the turn is no longer running anywhere: it was aborted or its process died. */
  deadline: number;
}

/**
 * The turns running now, across every API replica, in Redis, so that a turn whose process dies
 * (SIGKILL, OOM, a crash) between its start and its one database write is not lost: the sweeper
 * (TurnSweeper) stores it as a `failed` user message with reason `interrupted` once its deadline
 * has passed. The database sees nothing until the turn ends (issue 9's one write per turn).
 *
 * Keys (under REDIS_KEY_PREFIX): `turns:in-flight` a sorted set of turn ids scored by deadline, and
 * `turns:in-flight:<id>` the turn (JSON), written and removed together (MULTI).
 */
@Injectable()
export class InFlightTurns {
  private readonly logger = new Logger(InFlightTurns.name);
  private readonly indexKey: string;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    redisConfig: RedisConfig,
    private readonly config: TurnsConfig,
  ) {
    this.indexKey = `${redisConfig.REDIS_KEY_PREFIX}turns:in-flight`;
  }

  /** Longest a turn runs, ms (TURN_DEADLINE_MS). */
  get deadlineMs(): number {
    return this.config.TURN_DEADLINE_MS;
  }

  /**
   * Records a turn as running (one round trip), before anything else of it happens.
   * @throws DependencyUnavailable (503, `redis`) when Redis does not take it: the turn does not run
   */
  async begin(turn: InFlightTurn): Promise<void> {
    try {
      await this.redis
        .multi()
        .set(this.turnKey(turn.id), JSON.stringify(turn))
        .zadd(this.indexKey, turn.deadline, turn.id)
        .exec();
    } catch {
      throw new DependencyUnavailable('redis');
    }
  }

  /**
   * Removes a turn's record once the turn has ended (its messages stored, or nothing to store), in the
   * background: the answer never waits for it, and a record left behind is removed by the sweeper
   * (which finds its message already stored).
   */
  end(id: string): void {
    this.remove(id).catch((e: unknown) => {
      this.logger.warn(
        `in-flight record of turn ${id} not removed (the sweeper will): ${(e as Error).message}`,
      );
    });
  }

  /** Removes a turn's record and waits for it. */
  async remove(id: string): Promise<void> {
    await this.redis.multi().del(this.turnKey(id)).zrem(this.indexKey, id).exec();
  }

  /** Turns whose deadline has passed (oldest first, at most `limit`). */
  async expired(now = Date.now(), limit = 100): Promise<InFlightTurn[]> {
    const ids = await this.redis.zrangebyscore(this.indexKey, 0, now, 'LIMIT', 0, limit);
    if (ids.length === 0) return [];
    const values = await this.redis.mget(ids.map((id) => this.turnKey(id)));
    const turns: InFlightTurn[] = [];
    for (const [i, value] of values.entries()) {
      if (value) turns.push(JSON.parse(value) as InFlightTurn);
      else await this.redis.zrem(this.indexKey, ids[i]); // its record is gone: nothing to store
    }
    return turns;
  }

  /** How many turns are recorded in flight (running, or waiting for the sweeper). */
  count(): Promise<number> {
    return this.redis.zcard(this.indexKey);
  }

  private turnKey(id: string): string {
    return `${this.indexKey}:${id}`;
  }
}
