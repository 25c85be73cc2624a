import { setTimeout } from 'node:timers/promises';
import { replayDeltas } from '../../src/caching/replay';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Redis from 'ioredis';
import { ResponseCacheAdmin } from '../../src/caching/response-cache-admin.service';
import { ResponseCacheStats } from '../../src/caching/response-cache.stats';
import type { RedisResponseCacheStore } from '../../src/caching/redis-response-cache.store';
import { RESPONSE_CACHE_STORE } from '../../src/caching/response-cache.store';
import { questionHash, scopeFingerprint } from '../../src/caching/scope';
import { SemanticIndex } from '../../src/caching/semantic-index';
import { SingleFlight } from '../../src/caching/single-flight';
import { EngineStreamCut } from '../../src/inference/inference.errors';
import { REDIS } from '../../src/redis/redis.module';
import {
  type CachingHarness,
  engineResult,
  scopeFor,
  startCachingHarness,
} from '../factories/response-cache';
import { until } from '../factories/until';

/**
 * The response cache against the real Redis, PGlite with pgvector and the default in-process
 * embedding model (Universal Sentence Encoder lite + hashed n-grams, with word vectors for the guards): exact and semantic hits, guards, isolation, what is stored, single flight,
 * bounds and invalidation.
 */
describe('response cache (integration)', () => {
  let h: CachingHarness;
  let tenant: string;

  beforeAll(async () => {
    h = await startCachingHarness({ RESPONSE_CACHE_MAX_ENTRIES_PER_TENANT: '50' });
  });
  afterAll(async () => {
    await h?.close();
  });
  beforeEach(async () => {
    tenant = await h.tenant();
  });

  /** Asks through the cache; `answer` is what the engine would say. */
  const ask = (question: string, answer = `answer to ${question}`, scope = scopeFor(tenant), extra = {}) => {
    const compute = jest.fn(() => Promise.resolve(engineResult(answer)));
    return h.cache.serve({ scope, question, ...extra }, compute).then((served) => ({ ...served, compute }));
  };

  it('should answer a repeated question from the cache without the engine (exact, normalised)', async () => {
    const first = await ask('What is a KV cache?');
    expect(first.compute).toHaveBeenCalledTimes(1);
    expect(first.report).toEqual({ hit: false });

    const again = await ask('  what is a kv CACHE ', 'never computed');
    expect(again.compute).not.toHaveBeenCalled();
    expect(again.report).toMatchObject({ hit: true, type: 'exact', similarity: 1 });
    expect(again.result.content).toBe('answer to What is a KV cache?');
    expect(again.result.usage).toEqual({ promptTokens: 0, completionTokens: 0, cachedTokens: 0 });
    expect(again.result.replica).toBe('response-cache');
    expect(again.cached?.usage.promptTokens).toBe(40);
  });

  it('should answer a paraphrase from the cache (semantic) with its similarity', async () => {
    await ask('python sort list ascending');
    const paraphrase = await ask('how to sort a list in python ascending', 'never computed');
    expect(paraphrase.compute).not.toHaveBeenCalled();
    expect(paraphrase.report?.hit).toBe(true);
    expect(paraphrase.report?.type).toBe('semantic');
    expect(paraphrase.report?.similarity).toBeGreaterThan(0.5);
    expect(paraphrase.report?.similarity).toBeLessThan(1);
    expect(paraphrase.result.content).toBe('answer to python sort list ascending');

    // The paraphrase's repeats are now exact hits on the same entry; storing it fresh keeps the original.
    const repeat = await ask('How to sort a list in Python ascending?', 'never computed');
    expect(repeat.report).toMatchObject({ hit: true, type: 'exact', entryId: paraphrase.report?.entryId });
    await ask('how to sort a list in python ascending', 'fresh', scopeFor(tenant), {
      control: { mode: 'no-cache' },
    });
    expect((await ask('python sort list ascending', 'x')).result.content).toBe(
      'answer to python sort list ascending',
    );
    expect((await ask('how to sort a list in python ascending', 'x')).result.content).toBe('fresh');
  });

  it.each([
    ['weather in Berlin today', 'weather in Berlin next week', 'date'],
    ['top 5 coffee shops in Seattle', 'top 10 coffee shops in Seattle', 'number'],
    ['convert 100°F to Celsius', '100 Celsius in Fahrenheit', 'unit'],
    ['Recipe for pesto (nut-free)', 'Recipe for pesto with nuts', 'negation'],
    ['How to reset a Windows 11 password', 'How to reset a Mac 11 password', 'entity'],
    ['postgres vacuum settings explained', 'postgres wal settings explained', 'term'],
  ])(
    'should not serve %j for the close-but-different %j, recording the %s guard',
    async (cached, asked, guard) => {
      await ask(cached);
      const close = await ask(asked);
      expect(close.compute).toHaveBeenCalledTimes(1);
      expect(close.report).toEqual({ hit: false, guard });
      const stats = await h.app.get(ResponseCacheStats).forTenant(tenant);
      expect(stats.guardRejections[guard]).toBeGreaterThanOrEqual(1);
    },
  );

  it('should keep tenants apart: the same question in another tenant is a miss', async () => {
    await ask('What is LMCache?');
    const other = await h.tenant();
    const elsewhere = await ask('What is LMCache?', 'B', scopeFor(other));
    expect(elsewhere.compute).toHaveBeenCalledTimes(1);
    expect(elsewhere.report?.hit).toBe(false);
    expect(elsewhere.result.content).toBe('B');
    await ask('how to sort a list in python ascending');
    const paraphraseElsewhere = await ask('python sort list ascending', 'B2', scopeFor(other));
    expect(paraphraseElsewhere.report?.hit).toBe(false);
  });

  it('should share answers only within the same conversation context', async () => {
    const afterHistoryA = scopeFor(tenant, { context: 'history-a' });
    await ask('And in Python?', 'python answer for A', afterHistoryA);
    const afterHistoryB = await ask(
      'And in Python?',
      'python answer for B',
      scopeFor(tenant, { context: 'history-b' }),
    );
    expect(afterHistoryB.report?.hit).toBe(false);
    const firstQuestion = await ask('And in Python?', 'a first question', scopeFor(tenant));
    expect(firstQuestion.report?.hit).toBe(false);
    const sameHistory = await ask('and in python', 'never computed', afterHistoryA);
    expect(sameHistory.report).toMatchObject({ hit: true, type: 'exact' });
    expect(sameHistory.result.content).toBe('python answer for A');
    const paraphraseOtherHistory = await ask(
      'what about in Python?',
      'y',
      scopeFor(tenant, { context: 'history-b' }),
    );
    expect(paraphraseOtherHistory.result.content).not.toBe('python answer for A');
  });

  it('should separate agents, models, template versions and generation parameters', async () => {
    await ask('Explain HNSW indexes');
    for (const change of [
      { agent: 'billing' },
      { model: 'other' },
      { templateVersion: 'test@2' },
      { params: { temperature: 0.7 } },
    ]) {
      const served = await ask('Explain HNSW indexes', 'x', scopeFor(tenant, change));
      expect(served.report?.hit).toBe(false);
    }
  });

  it('should not store failed, cut or truncated answers', async () => {
    const scope = scopeFor(tenant);
    const cut = jest.fn(() => Promise.reject(new EngineStreamCut('cut after 3 tokens')));
    await expect(h.cache.serve({ scope, question: 'What is vLLM?' }, cut)).rejects.toThrow(EngineStreamCut);
    expect((await ask('What is vLLM?', 'complete')).compute).toHaveBeenCalledTimes(1);

    const truncated = jest.fn(() => Promise.resolve(engineResult('half an ans', { finishReason: 'length' })));
    expect((await h.cache.serve({ scope, question: 'Why is the sky blue?' }, truncated)).result.content).toBe(
      'half an ans',
    );
    expect((await ask('Why is the sky blue?', 'full answer')).compute).toHaveBeenCalledTimes(1);

    const empty = jest.fn(() => Promise.resolve(engineResult('  ')));
    await h.cache.serve({ scope, question: 'Say nothing' }, empty);
    expect((await ask('Say nothing', 'something')).compute).toHaveBeenCalledTimes(1);
  });

  it('should honour the request modes', async () => {
    const scope = scopeFor(tenant);
    await ask('What is a token?', 'v1');
    const noCache = await ask('What is a token?', 'v2', scope, { control: { mode: 'no-cache' } });
    expect(noCache.compute).toHaveBeenCalledTimes(1);
    expect((await ask('What is a token?', 'x')).result.content).toBe('v2');

    const noStore = await ask('What is a block?', 'not kept', scope, { control: { mode: 'no-store' } });
    expect(noStore.compute).toHaveBeenCalledTimes(1);
    expect((await ask('What is a block?', 'kept')).compute).toHaveBeenCalledTimes(1);
    expect(
      (await ask('What is a block?', 'x', scope, { control: { mode: 'no-store' } })).result.content,
    ).toBe('kept');

    const bypass = await ask('What is a block?', 'fresh', scope, { control: { mode: 'bypass' } });
    expect(bypass.compute).toHaveBeenCalledTimes(1);
    expect(bypass.result.content).toBe('fresh');
    expect((await ask('What is a block?', 'x')).result.content).toBe('kept');

    const tooOld = await ask('What is a block?', 'newer', scope, { control: { maxAgeSeconds: 0 } });
    expect(tooOld.compute).toHaveBeenCalledTimes(1);
  });

  it('should serve a cached answer byte for byte, so its replayed deltas join to the answer', async () => {
    const answer = 'Prefix caching reuses KV blocks.\n\n- one\n- two  ';
    await ask('What does prefix caching do?', answer);
    const replayed = await ask('What does prefix caching do?', 'x');
    expect(replayed.report?.hit).toBe(true);
    expect(replayed.compute).not.toHaveBeenCalled();
    // The caller replays a hit to its client (AnswerService, ChatCompletionsService): word-sized deltas.
    const deltas = replayDeltas(replayed.result.content);
    expect(deltas.length).toBeGreaterThan(3);
    expect(deltas.join('')).toBe(answer);
  });

  it('should make concurrent identical misses wait on one engine call (single flight in process)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const compute = jest.fn(async () => {
      await gate;
      return engineResult('the one answer');
    });
    const scope = scopeFor(tenant);
    const coalesce = jest.spyOn(h.app.get(SingleFlight), 'coalesce');
    const all = Promise.all(
      Array.from({ length: 5 }, () => h.cache.serve({ scope, question: 'What is single flight?' }, compute)),
    );
    // Gate: all five have joined the flight (one leads and calls the engine, four wait on it).
    await until(() => coalesce.mock.calls.length === 5, 'five requests on one flight');
    coalesce.mockRestore();
    release();
    const served = await all;
    expect(compute).toHaveBeenCalledTimes(1);
    expect(served.map((s) => s.result.content)).toEqual(Array(5).fill('the one answer'));
    expect(served.filter((s) => s.report?.hit === true)).toHaveLength(4);
    const entryIds = new Set(served.filter((s) => s.report?.hit).map((s) => s.report?.entryId));
    expect(entryIds.size).toBe(1);
    expect((await h.app.get(ResponseCacheStats).forTenant(tenant)).singleFlightWaits).toBe(4);
  });

  it('should wait for another replica answering the same question (single flight through Redis)', async () => {
    const scope = scopeFor(tenant);
    const question = 'What is rendezvous hashing?';
    const store = h.app.get<RedisResponseCacheStore>(RESPONSE_CACHE_STORE);
    const redis = h.app.get<Redis>(REDIS);
    // Another replica holds the lock for this question and is calling the engine.
    const lockKey = store.flightKey(tenant, scopeFingerprint(scope), questionHash(question));
    await redis.set(lockKey, 'other-replica', 'PX', 10_000);
    const compute = jest.fn(() => Promise.resolve(engineResult('mine')));
    const waitFor = jest.spyOn(h.app.get(SingleFlight), 'waitFor');
    const waiting = h.cache.serve({ scope, question }, compute);
    // Gate: this replica found the lock held and waits on it.
    await until(() => waitFor.mock.calls.length === 1, 'the request to wait on the other replica');
    waitFor.mockRestore();
    // ... it stores its answer and releases the lock.
    await h.cache.storeAnswer(scope, question, engineResult('from the other replica'));
    await redis.del(lockKey);
    const served = await waiting;
    expect(compute).not.toHaveBeenCalled();
    expect(served.result.content).toBe('from the other replica');
    expect(served.report).toMatchObject({ hit: true, type: 'exact' });
  });

  it('should call the engine itself when the other replica gives up without an answer', async () => {
    const scope = scopeFor(tenant);
    const question = 'What is a cache salt?';
    const lockKey = h.app
      .get<RedisResponseCacheStore>(RESPONSE_CACHE_STORE)
      .flightKey(tenant, scopeFingerprint(scope), questionHash(question));
    const redis = h.app.get<Redis>(REDIS);
    await redis.set(lockKey, 'other-replica', 'PX', 10_000);
    const compute = jest.fn(() => Promise.resolve(engineResult('mine')));
    const waitFor = jest.spyOn(h.app.get(SingleFlight), 'waitFor');
    const waiting = h.cache.serve({ scope, question }, compute);
    await until(() => waitFor.mock.calls.length === 1, 'the request to wait on the other replica');
    waitFor.mockRestore();
    await redis.del(lockKey);
    const served = await waiting;
    expect(compute).toHaveBeenCalledTimes(1);
    expect(served.result.content).toBe('mine');
  });

  it('should invalidate by entry, agent, template version and tenant, and refuse other tenants to non-admins', async () => {
    const admin = h.app.get(ResponseCacheAdmin);
    const auth = { tenantId: tenant, tenantName: 't', keyId: randomUUID(), admin: false };
    const a = await ask('q one');
    const one = await ask('q one', 'x');
    await ask('q two', 'a2', scopeFor(tenant, { agent: 'billing' }));
    await ask('q three', 'a3', scopeFor(tenant, { templateVersion: 'test@9' }));
    await ask('q four', 'a4');
    expect(a.report?.hit).toBe(false);

    expect(await admin.invalidate(auth, { entryId: one.report?.entryId })).toEqual({
      deleted: 1,
      tenants: 1,
    });
    expect((await ask('q one', 'recomputed')).result.content).toBe('recomputed');
    expect((await admin.invalidate(auth, { agent: 'billing' })).deleted).toBe(1);
    expect(
      (await ask('q two', 'again', scopeFor(tenant, { agent: 'billing' }))).compute,
    ).toHaveBeenCalledTimes(1);
    expect((await admin.invalidate(auth, { templateVersion: 'test@9' })).deleted).toBe(1);
    expect((await admin.invalidate(auth, {})).deleted).toBeGreaterThanOrEqual(3);
    expect((await ask('q four', 'recomputed')).compute).toHaveBeenCalledTimes(1);

    const other = await h.tenant();
    await expect(admin.invalidate(auth, { tenantId: other })).rejects.toMatchObject({ code: 'Forbidden' });
    await expect(admin.invalidate(auth, { tenantId: '*' })).rejects.toMatchObject({ code: 'Forbidden' });
    await ask('q five', 'a5', scopeFor(other));
    const result = await admin.invalidate({ ...auth, admin: true }, { tenantId: other });
    expect(result).toEqual({ deleted: 1, tenants: 1 });
  });

  it('should report hits, misses and guard rejections by type', async () => {
    await ask('how to rotate api keys safely');
    await ask('how to rotate api keys safely');
    await ask('rotate API keys safely');
    await ask('how to store api keys safely');
    const report = await h.app
      .get(ResponseCacheAdmin)
      .report({ tenantId: tenant, tenantName: 't', keyId: 'k', admin: false });
    expect(report).toMatchObject({
      lookups: 4,
      hits: { exact: 1, semantic: 1 },
      misses: 2,
      hitRate: 0.5,
      stores: 2,
      entries: 2,
      semantic: { enabled: true, dimension: 896 },
    });
    expect(report.guardRejections.term).toBeGreaterThanOrEqual(1);
  });

  it('should write a hit mark and the counters behind, yet count them in a read at once', async () => {
    const scope = scopeFor(tenant);
    const question = 'What does a write-behind buffer do?';
    const store = h.app.get<RedisResponseCacheStore>(RESPONSE_CACHE_STORE);
    const redis = h.app.get<Redis>(REDIS);
    await ask(question);
    const hit = await ask(question, 'never computed');
    expect(hit.report).toMatchObject({ hit: true, type: 'exact' });

    // The read flushes this process's pending increments first.
    const counts = await h.app.get(ResponseCacheStats).forTenant(tenant);
    expect(counts).toMatchObject({ lookups: 2, hits: { exact: 1, semantic: 0 }, misses: 1 });
    // The hit mark reaches the entry's hash within the write-behind interval.
    const exactKey = store.exactKey(tenant, scopeFingerprint(scope), questionHash(question));
    const entryKey = exactKey.replace(/:x:.*$/, `:e:${hit.cached?.entryId}`);
    await until(async () => (await redis.hget(entryKey, 'hits')) === '1', 'the hit mark written behind');
  });

  it('should report semantic lookups on, with the embedding model', () => {
    expect(h.app.get(SemanticIndex).describe()).toMatchObject({
      enabled: true,
      model: 'kvchat-local-use-lite-lexical-896',
    });
  });
});

describe('response cache size bound (integration)', () => {
  let h: CachingHarness;
  beforeAll(async () => {
    h = await startCachingHarness({
      RESPONSE_CACHE_MAX_ENTRIES_PER_TENANT: '3',
      RESPONSE_CACHE_SEMANTIC: 'false',
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('should evict the least recently used answer past the per-tenant bound', async () => {
    const tenant = await h.tenant();
    const scope = scopeFor(tenant);
    const ask = async (q: string) => {
      // Recency is a millisecond timestamp: two uses in the same millisecond tie, and Redis then orders
      // them by entry id. A millisecond apart, the order under test is the order of use.
      await setTimeout(2);
      const compute = jest.fn(() => Promise.resolve(engineResult(`a:${q}`)));
      const served = await h.cache.serve({ scope, question: q }, compute);
      return { hit: served.report?.hit, computed: compute.mock.calls.length };
    };
    await ask('one');
    await ask('two');
    await ask('three');
    expect((await ask('one')).hit).toBe(true); // "one" is now the most recently used
    await ask('four'); // evicts "two"
    expect(await h.app.get<RedisResponseCacheStore>(RESPONSE_CACHE_STORE).size(tenant)).toBe(3);
    expect((await ask('two')).hit).toBe(false);
    expect((await ask('one')).hit).toBe(true);
    const stats = await h.app.get(ResponseCacheStats).forTenant(tenant);
    expect(stats.evictions).toBeGreaterThanOrEqual(2);
  });
});

describe('response cache verifier hook (integration)', () => {
  let h: CachingHarness;
  let server: Server;
  const seen: { query: string; documents: string[] }[] = [];
  let score = 0.1;

  beforeAll(async () => {
    // A cross-encoder behind a rerank endpoint (the vLLM / Jina / Cohere shape), scoring what the test says.
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push(JSON.parse(body) as { query: string; documents: string[] });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ results: [{ index: 0, relevance_score: score }] }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    h = await startCachingHarness({
      RESPONSE_CACHE_VERIFIER_URL: `http://127.0.0.1:${port}/v1/rerank`,
      RESPONSE_CACHE_VERIFIER_MODEL: 'test-reranker',
    });
  });
  afterAll(async () => {
    await h?.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('should serve a semantic candidate only when the verifier confirms it, recording a refusal', async () => {
    const scope = scopeFor(await h.tenant());
    const compute = jest.fn(() => Promise.resolve(engineResult('sorted')));
    await h.cache.serve({ scope, question: 'python sort list ascending' }, compute);

    score = 0.1;
    const refused = await h.cache.serve(
      { scope, question: 'how to sort a list in python ascending' },
      compute,
    );
    expect(refused.report).toEqual({ hit: false, guard: 'verifier' });
    expect(seen.at(-1)).toMatchObject({
      model: 'test-reranker',
      query: 'how to sort a list in python ascending',
      documents: ['python sort list ascending'],
    });

    score = 0.9;
    const confirmed = await h.cache.serve({ scope, question: 'python: sort a list ascending' }, compute);
    expect(confirmed.report).toMatchObject({ hit: true, type: 'semantic' });
    // Exact repeats never ask the verifier.
    const asked = seen.length;
    await h.cache.serve({ scope, question: 'python sort list ascending' }, compute);
    expect(seen).toHaveLength(asked);
  });
});
