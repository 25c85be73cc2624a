import { blockHashChain } from '../../src/inference/block-hash';
import { randomUUID } from 'node:crypto';
import { MikroORM } from '@mikro-orm/postgresql';
import Redis from 'ioredis';
import { Tenant } from '../../src/auth/tenant.entity';
import type { InferenceConfig } from '../../src/config/inference.config';
import type { RedisConfig } from '../../src/config/redis.config';
import { packChain, PrefixReuseService } from '../../src/context/prefix-reuse.service';
import { Conversation } from '../../src/conversations/conversation.entity';
import { ConversationNotFound } from '../../src/conversations/conversation.errors';
import { PrefixStatsSource } from '../../src/conversations/prefix-stats.source';
import { Message } from '../../src/conversations/message.entity';
import { buildOrmOptions, migratorOf } from '../../src/database/mikro-orm.options';
import { ENTITIES } from '../../src/entities';
import { createScratchDatabase, type ScratchDatabase } from '../factories/postgres';
import { deleteRedisPrefix } from '../factories/redis';

const ids = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

describe('PrefixReuseService (integration, Redis)', () => {
  let redis: Redis;
  let sut: PrefixReuseService;
  const prefix = `kvchat-test-${randomUUID()}:`;

  beforeAll(() => {
    redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    sut = new PrefixReuseService(
      redis,
      { REDIS_KEY_PREFIX: prefix } as RedisConfig,
      { INFERENCE_BLOCK_SIZE: 16 } as InferenceConfig,
    );
  });

  afterAll(async () => {
    await redis.quit();
    await deleteRedisPrefix(prefix);
  });

  it('should measure the block-aligned prefix each prompt shares with the previous one of its conversation', async () => {
    const record = (conversationId: string, tokens: number[]) =>
      sut.record(conversationId, tokens.length, blockHashChain(tokens, 16, 'salt'));
    const first = await record('c1', ids(100));
    const grown = await record('c1', [...ids(100), ...ids(60, 500)]);
    const compacted = await record('c1', [...ids(20), ...ids(80, 900)]);
    const other = await record('c2', ids(100));

    expect(first).toEqual({ reusableTokens: 0, previousPromptTokens: null });
    expect(grown).toEqual({ reusableTokens: 96, previousPromptTokens: 100 });
    expect(compacted).toEqual({ reusableTokens: 16, previousPromptTokens: 160 });
    expect(other.previousPromptTokens).toBeNull();
    expect(await redis.ttl(`${prefix}prefix-chain:c1`)).toBeGreaterThan(3600);
  });

  it('should take the shared blocks from the caller when the stored prompt is the one it built, and compare otherwise', async () => {
    const a = blockHashChain(ids(100), 16);
    const b = blockHashChain([...ids(100), ...ids(60, 500)], 16);
    const c = blockHashChain([...ids(50), ...ids(60, 700)], 16);
    await sut.record('k1', 100, a);

    // The stored prompt is `a`, as the caller says: its count (5 of 6 here) is taken as given.
    const known = await sut.record('k1', 160, b, {
      packed: packChain(b),
      previous: { promptTokens: 100, packed: packChain(a), commonBlocks: 5 },
    });
    // Another process stored `b` meanwhile; the caller still thinks `a` came last: compared hash by hash.
    const stale = await sut.record('k1', 110, c, {
      packed: packChain(c),
      previous: { promptTokens: 100, packed: packChain(a), commonBlocks: 6 },
    });

    expect(known).toEqual({ reusableTokens: 80, previousPromptTokens: 100 });
    expect(stale).toEqual({ reusableTokens: 48, previousPromptTokens: 160 });
    expect(await redis.get(`${prefix}prefix-chain:k1`)).toBe(`110:${packChain(c)}`);
  });

  it('should read a chain stored by an earlier version (hashes separated by commas)', async () => {
    const a = blockHashChain(ids(100), 16);
    await redis.set(`${prefix}prefix-chain:k2`, `100:${a.map((h) => h.slice(0, 8)).join(',')}`);

    const next = await sut.record('k2', 160, blockHashChain([...ids(100), ...ids(60, 500)], 16));

    expect(next).toEqual({ reusableTokens: 96, previousPromptTokens: 100 });
  });
});

describe('PrefixStatsSource (integration, PostgreSQL server)', () => {
  let db: ScratchDatabase;
  let orm: MikroORM;
  let sut: PrefixStatsSource;
  const tenants: string[] = [];
  const conversations: string[] = [];

  beforeAll(async () => {
    db = await createScratchDatabase();
    orm = await MikroORM.init(buildOrmOptions(db.url, ENTITIES, { pool: { min: 0, max: 2 } }));
    await (await migratorOf(orm)).up();
    const em = orm.em.fork();
    for (const name of ['a', 'b']) {
      const tenant = em.create(Tenant, { name: `${name}-${randomUUID()}` });
      tenants.push(tenant.id);
      const conversation = em.create(Conversation, { tenantId: tenant.id });
      conversations.push(conversation.id);
      // Three turns: prompts 100, 200, 300 tokens; the engine cached 0, 180, 290; one failed user message.
      const usage = [
        [100, 0, 0],
        [200, 180, 96],
        [300, 290, 192],
      ];
      let sequence = 0;
      for (const [promptTokens, cachedTokens, backend] of usage) {
        em.create(Message, {
          tenantId: tenant.id,
          conversationId: conversation.id,
          sequence: ++sequence,
          role: 'user',
          content: 'q',
        });
        em.create(Message, {
          tenantId: tenant.id,
          conversationId: conversation.id,
          sequence: ++sequence,
          role: 'assistant',
          content: 'a',
          usage: { promptTokens, completionTokens: 10, cachedTokens },
          cache: {
            cachedTokens,
            prefixReuse: cachedTokens / promptTokens,
            backendReusableTokens: backend,
            window: { compacted: promptTokens === 300 },
          },
        });
      }
      em.create(Message, {
        tenantId: tenant.id,
        conversationId: conversation.id,
        sequence: ++sequence,
        role: 'user',
        content: 'q',
        status: 'failed',
      });
    }
    await em.flush();
    sut = new PrefixStatsSource(orm.em);
  });

  afterAll(async () => {
    await orm?.close(true);
    await db?.drop();
  });

  it('should sum one tenant’s turns, and turns 2 and later apart', async () => {
    const stats = await sut.collect({ kind: 'tenant', tenantId: tenants[0] });

    expect(stats).toEqual({
      conversations: 1,
      all: {
        turns: 3,
        promptTokens: 600,
        cachedTokens: 470,
        prefixReuse: 470 / 600,
        backendReusableTokens: 288,
        backendPrefixReuse: 288 / 600,
      },
      laterTurns: {
        turns: 2,
        promptTokens: 500,
        cachedTokens: 470,
        prefixReuse: 470 / 500,
        backendReusableTokens: 288,
        backendPrefixReuse: 288 / 500,
      },
      prefillReduction: 470 / 600,
      windowMoves: 1,
    });
  });

  it('should cover every tenant in the global scope and refuse another tenant’s conversation', async () => {
    const global = await sut.collect({ kind: 'global', tenantId: tenants[0] });

    expect(global.conversations).toBeGreaterThanOrEqual(2);
    expect(global.all.turns).toBeGreaterThanOrEqual(6);
    await expect(
      sut.collect({ kind: 'tenant', tenantId: tenants[0], conversationId: conversations[1] }),
    ).rejects.toBeInstanceOf(ConversationNotFound);
    expect(
      (await sut.collect({ kind: 'tenant', tenantId: tenants[1], conversationId: conversations[1] })).all
        .turns,
    ).toBe(3);
  });
});
