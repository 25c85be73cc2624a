import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { MikroORM } from '@mikro-orm/postgresql';
import type Redis from 'ioredis';
import {
  DependencyUnavailable,
  dependencyFailure,
  registerDatabaseEndpoint,
} from '../../src/common/dependency-errors';
import { toProblem } from '../../src/common/problem.filter';
import { RedisConfig } from '../../src/config/redis.config';
import { ConversationBusy } from '../../src/conversations/conversation.errors';
import { loadTurnState } from '../../src/conversations/conversation.repository';
import { TurnLockService } from '../../src/conversations/turn-lock.service';
import { RequestAborted } from '../../src/inference/inference.errors';
import { connectRedisOrFail } from '../../src/redis/redis.connection';
import { deleteRedisPrefix, freePort, startOwnRedis } from '../factories/redis';

/** A promise and the function that resolves it: an explicit gate between two concurrent turns. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

const lockConfig = (prefix: string, waitMs: number, leaseMs = 5000, renewMs = 1000): RedisConfig =>
  Object.assign(new RedisConfig(), {
    REDIS_KEY_PREFIX: prefix,
    TURN_LOCK_WAIT_MS: waitMs,
    TURN_LOCK_LEASE_MS: leaseMs,
    TURN_LOCK_RENEW_MS: renewMs,
  });

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The turn lock against the local Redis (contention) and a Redis of its own that it stops (outage). */
describe('TurnLockService (integration)', () => {
  describe('on the local Redis', () => {
    const prefix = `kvchat-test-${randomUUID()}:`;
    let redis: Redis;

    beforeAll(async () => {
      redis = await connectRedisOrFail('redis://127.0.0.1:6379', 3000, 2000);
    });

    afterAll(async () => {
      await redis.quit();
      await deleteRedisPrefix(prefix);
    });

    it('should run turns of one conversation one after the other', async () => {
      const sut = new TurnLockService(redis, lockConfig(prefix, 5_000));
      const first = gate();
      const order: string[] = [];

      const a = sut.withConversation('c1', async () => {
        order.push('a:start');
        await first.opened;
        order.push('a:end');
      });
      const b = sut.withConversation('c1', () => {
        order.push('b');
        return Promise.resolve();
      });
      setImmediate(first.open);
      await Promise.all([a, b]);

      expect(order).toEqual(['a:start', 'a:end', 'b']);
    });

    it('should answer ConversationBusy with a Retry-After once the wait runs out', async () => {
      const sut = new TurnLockService(redis, lockConfig(prefix, 200));
      const held = gate();
      const holder = sut.withConversation('c2', () => held.opened);

      const err = await sut.withConversation('c2', () => Promise.resolve()).catch((e: unknown) => e);
      held.open();
      await holder;

      expect(err).toBeInstanceOf(ConversationBusy);
      expect(toProblem(err, '/x', 'r')).toMatchObject({ status: 409, retryAfterSeconds: 1 });
    });

    it('should keep the lock of a turn that runs for several leases, renewing it', async () => {
      const sut = new TurnLockService(redis, lockConfig(prefix, 0, 1000, 200));
      const held = gate();
      const holder = sut.withConversation('c6', () => held.opened);
      await sleep(2500);

      const err = await sut.withConversation('c6', () => Promise.resolve()).catch((e: unknown) => e);
      const ttl = await redis.pttl(`${prefix}lock:conversation:c6`);
      held.open();
      await holder;

      expect(err).toBeInstanceOf(ConversationBusy);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(1000);
    });

    it('should let the next turn run once the lease of a holder that died has lapsed, not before', async () => {
      // The holder's own connection closes mid-turn: like a killed process, it can neither renew nor release.
      const dying = await connectRedisOrFail('redis://127.0.0.1:6379', 3000, 2000);
      const holderLock = new TurnLockService(dying, lockConfig(prefix, 0, 1000, 200));
      const held = gate();
      const holder = holderLock.withConversation('c7', () => held.opened);
      await sleep(300);
      dying.disconnect();
      const died = performance.now();
      const sut = new TurnLockService(redis, lockConfig(prefix, 10_000, 1000, 200));

      await sut.withConversation('c7', () => Promise.resolve());
      const waitedMs = performance.now() - died;
      held.open();
      await holder;

      // The lease was set at most one renewal (200 ms) before the holder died.
      expect(waitedMs).toBeGreaterThanOrEqual(700);
      expect(waitedMs).toBeLessThan(1000 + 2000);
    });

    it('should not run a turn whose client went away while it waited', async () => {
      const sut = new TurnLockService(redis, lockConfig(prefix, 5_000));
      const held = gate();
      const holder = sut.withConversation('c3', () => held.opened);
      const client = new AbortController();
      let ran = false;

      const waiting = sut
        .withConversation(
          'c3',
          () => {
            ran = true;
            return Promise.resolve();
          },
          client.signal,
        )
        .catch((e: unknown) => e);
      client.abort();
      held.open();
      await holder;

      expect(await waiting).toBeInstanceOf(RequestAborted);
      expect(ran).toBe(false);
    });
  });

  describe('when its Redis stops', () => {
    const prefix = `kvchat-test-${randomUUID()}:`;
    let own: { url: string; process: ChildProcess };
    let redis: Redis;

    beforeEach(async () => {
      own = await startOwnRedis();
      redis = await connectRedisOrFail(own.url, 3000, 500);
      redis.on('error', () => undefined);
    });

    afterEach(() => {
      redis.disconnect();
      if (own.process.exitCode === null) own.process.kill('SIGKILL');
    });

    const stop = async (): Promise<void> => {
      own.process.kill('SIGKILL');
      await once(own.process, 'exit');
    };

    it('should return the answer of a turn that ran, at once, although the lock cannot be released', async () => {
      const sut = new TurnLockService(redis, lockConfig(prefix, 30_000));

      const started = performance.now();
      const answer = await sut.withConversation('c4', async () => {
        await stop();
        return 'stored';
      });

      expect(answer).toBe('stored');
      expect(performance.now() - started).toBeLessThan(5_000);
    });

    it('should refuse a turn with a 503 naming Redis, not a 409 after the wait', async () => {
      const sut = new TurnLockService(redis, lockConfig(prefix, 30_000));
      await stop();
      let ran = false;

      const err = await sut
        .withConversation('c5', () => {
          ran = true;
          return Promise.resolve();
        })
        .catch((e: unknown) => e);

      expect(err).toBeInstanceOf(DependencyUnavailable);
      expect(toProblem(err, '/x', 'r')).toMatchObject({ status: 503, dependency: 'redis' });
      expect(ran).toBe(false);
    });

    it('should classify a command sent while Redis is down as Redis unavailable', async () => {
      await stop();

      const err = await redis.get('x').catch((e: unknown) => e);

      expect(dependencyFailure(err)).toMatchObject({ dependency: 'redis' });
    });
  });

  describe('when PostgreSQL does not answer', () => {
    /** A MikroORM on a port nothing listens on, registered as this process's database. */
    const ormOnDeadPort = async (): Promise<MikroORM> => {
      const url = `postgresql://postgres@127.0.0.1:${await freePort()}/none`;
      registerDatabaseEndpoint(url);
      return MikroORM.init({
        clientUrl: url,
        entities: [],
        discovery: { warnWhenNoEntities: false },
        connect: false,
      });
    };

    it('should classify MikroORM’s error as the database unavailable, with a 503 and Retry-After', async () => {
      const orm = await ormOnDeadPort();

      const err = await orm.em
        .getConnection()
        .execute('select 1')
        .catch((e: unknown) => e);
      await orm.close(true);

      expect(toProblem(err, '/x', 'r')).toMatchObject({
        status: 503,
        code: 'DependencyUnavailable',
        dependency: 'database',
        retryAfterSeconds: 2,
      });
    });

    it('should classify the turn’s own read (bind parameters through knex, not MikroORM’s execute) as the database unavailable', async () => {
      const orm = await ormOnDeadPort();

      const err = await loadTurnState(orm.em, randomUUID(), randomUUID()).catch((e: unknown) => e);
      await orm.close(true);

      expect(toProblem(err, '/x', 'r')).toMatchObject({ status: 503, dependency: 'database' });
    });

    it('should leave a rejected statement a 500, not a 503', async () => {
      const orm = await MikroORM.init({
        clientUrl: 'postgresql://postgres@127.0.0.1:5432/postgres',
        entities: [],
        discovery: { warnWhenNoEntities: false },
      });

      const err = await orm.em
        .getConnection()
        .execute('select * from no_such_table_here')
        .catch((e: unknown) => e);
      await orm.close(true);

      expect(dependencyFailure(err)).toBeNull();
      expect(toProblem(err, '/x', 'r').status).toBe(500);
    });
  });
});
