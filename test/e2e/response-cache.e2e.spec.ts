import { randomUUID } from 'node:crypto';
import { DATABASE_ENDPOINT, type DatabaseEndpoint } from '../../src/database/database.module';
import { startEngineSimulator, type RunningSimulator } from '../../src/simulator/simulator.server';
import { postSse } from '../factories/sse';
import { api, startTestApp, type TestApp } from '../factories/test-app';
import { deleteRedisPrefix } from '../factories/redis';

/**
 * The response cache through the turn API: the app on a real port (its default in-process embedding
 * model serves the semantic cache), the engine simulator as a server this suite controls for faults
 * and request counts, real Redis, PGlite with pgvector.
 */
describe('response cache (e2e)', () => {
  let sim: RunningSimulator;
  let sut: TestApp;
  let adminKey: string;

  beforeAll(async () => {
    sim = await startEngineSimulator({ timing: { timeScale: 0 }, replyTokens: { min: 24, max: 48 } });
    // No date in the prompt tail: a run across midnight (UTC) would otherwise change the first questions' scope.
    sut = await startTestApp({ INFERENCE_ENDPOINTS: sim.baseURL, PROMPT_DATE_IN_TAIL: 'false' });
    adminKey = (await sut.keys.create(`admin-${Date.now()}`, { admin: true })).key;
  });
  afterAll(async () => {
    await sut?.close();
    await sim?.close();
  });
  afterEach(() => sim.engine.setFaults({ errorRate: 0, cutStreamAfterTokens: null, stallMs: 0 }));

  const engineRequests = (): number => sim.engine.state().requests.started;
  const conversation = async (key = sut.keyA): Promise<string> => {
    const res = await api(`${sut.url}/v1/conversations`, { key, body: {} });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };
  const turn = async (id: string, body: Record<string, unknown>, key = sut.keyA) => {
    const res = await api(`${sut.url}/v1/conversations/${id}/turns`, { key, body });
    expect(res.status).toBe(201);
    return res.body;
  };
  /** A first question in a fresh conversation. */
  const ask = async (content: string, extra: Record<string, unknown> = {}, key = sut.keyA) =>
    turn(await conversation(key), { content, ...extra }, key);

  it('should answer a repeated first question from the cache, without the engine, and say so on the turn', async () => {
    const first = await ask('What does LMCache offload?');
    expect(first.assistantMessage.cache.response).toEqual({ hit: false });
    expect(first.assistantMessage.usage.promptTokens).toBeGreaterThan(0);

    const before = engineRequests();
    const again = await ask('what does LMCache offload');
    expect(engineRequests()).toBe(before);
    expect(again.assistantMessage.cache.response).toMatchObject({
      hit: true,
      type: 'exact',
      similarity: 1,
      entryId: expect.any(String),
    });
    expect(again.assistantMessage.content).toBe(first.assistantMessage.content);
    expect(again.assistantMessage.usage).toEqual({ promptTokens: 0, completionTokens: 0, cachedTokens: 0 });
    expect(again.assistantMessage.timings.ttftMs).toBe(0);
    expect(again.assistantMessage.replica).toBe('response-cache');
  });

  it('should answer a paraphrase from the cache with its similarity, and refuse a close-but-different question', async () => {
    const original = await ask('python sort list ascending');
    const paraphrase = await ask('how to sort a list in python ascending');
    expect(paraphrase.assistantMessage.cache.response).toMatchObject({ hit: true, type: 'semantic' });
    expect(paraphrase.assistantMessage.cache.response.similarity).toBeGreaterThan(0.5);
    expect(paraphrase.assistantMessage.content).toBe(original.assistantMessage.content);

    const before = engineRequests();
    const different = await ask('python sort list descending');
    expect(engineRequests()).toBe(before + 1);
    expect(different.assistantMessage.cache.response).toEqual({ hit: false, guard: 'negation' });
    const dated = await ask('python sort list ascending in 2019');
    expect(dated.assistantMessage.cache.response).toEqual({ hit: false, guard: 'date' });
  });

  it('should keep tenants apart', async () => {
    await ask('Who maintains pgvector?');
    const otherTenant = await ask('Who maintains pgvector?', {}, sut.keyB);
    expect(otherTenant.assistantMessage.cache.response.hit).toBe(false);
    expect(otherTenant.assistantMessage.usage.promptTokens).toBeGreaterThan(0);
  });

  it('should share a later question only after the same history', async () => {
    // Two conversations with the same first turn (the second one's answer comes from the cache).
    const a = await conversation();
    const b = await conversation();
    const c = await conversation();
    await turn(a, { content: 'Name a vector index type' });
    expect((await turn(b, { content: 'Name a vector index type' })).assistantMessage.cache.response.hit).toBe(
      true,
    );
    await turn(c, { content: 'Name a relational database' });

    const inA = await turn(a, { content: 'And how does it scale?' });
    expect(inA.assistantMessage.cache.response.hit).toBe(false);
    const inB = await turn(b, { content: 'And how does it scale?' });
    expect(inB.assistantMessage.cache.response).toMatchObject({ hit: true, type: 'exact' });
    expect(inB.assistantMessage.content).toBe(inA.assistantMessage.content);
    const inC = await turn(c, { content: 'And how does it scale?' });
    expect(inC.assistantMessage.cache.response.hit).toBe(false);
  });

  it('should replay a cached answer as a stream shaped like a live one', async () => {
    const question = 'Explain continuous batching in vLLM';
    const id1 = await conversation();
    const live = await postSse(`${sut.url}/v1/conversations/${id1}/turns`, sut.keyA, { content: question });
    const id2 = await conversation();
    const replay = await postSse(`${sut.url}/v1/conversations/${id2}/turns`, sut.keyA, { content: question });

    for (const stream of [live, replay]) {
      expect(stream.status).toBe(200);
      expect(stream.contentType).toContain('text/event-stream');
      expect(stream.events.length).toBeGreaterThan(2);
      expect(
        stream.events.slice(0, -1).every((e) => e.event === 'token' && typeof e.data.delta === 'string'),
      ).toBe(true);
      expect(stream.events.at(-1)?.event).toBe('turn');
    }
    const text = (s: typeof live) =>
      s.events
        .filter((e) => e.event === 'token')
        .map((e) => e.data.delta as string)
        .join('');
    const replayTurn = replay.events.at(-1)?.data;
    expect(replayTurn.assistantMessage.cache.response).toMatchObject({ hit: true, type: 'exact' });
    expect(text(replay)).toBe(replayTurn.assistantMessage.content);
    expect(text(replay)).toBe(text(live));
    expect(Object.keys(replayTurn).sort()).toEqual(Object.keys(live.events.at(-1)?.data).sort());
  });

  it('should not cache an answer whose stream was cut, nor a failed one', async () => {
    sim.engine.setFaults({ cutStreamAfterTokens: 3 });
    const id = await conversation();
    const cut = await postSse(`${sut.url}/v1/conversations/${id}/turns`, sut.keyA, {
      content: 'Describe HNSW graphs',
    });
    expect(cut.events.at(-1)).toMatchObject({ event: 'error', data: { code: 'EngineStreamCut' } });
    sim.engine.setFaults({ cutStreamAfterTokens: null, errorRate: 1 });
    const failed = await api(`${sut.url}/v1/conversations/${await conversation()}/turns`, {
      key: sut.keyA,
      body: { content: 'Describe IVFFlat lists' },
    });
    expect(failed.status).toBe(502);
    sim.engine.setFaults({ errorRate: 0 });

    const before = engineRequests();
    const afterCut = await ask('Describe HNSW graphs');
    const afterFailure = await ask('Describe IVFFlat lists');
    expect(engineRequests()).toBe(before + 2);
    expect(afterCut.assistantMessage.cache.response.hit).toBe(false);
    expect(afterFailure.assistantMessage.cache.response.hit).toBe(false);
    expect((await ask('Describe HNSW graphs')).assistantMessage.cache.response.hit).toBe(true);
  });

  it('should make concurrent identical questions wait on one engine call', async () => {
    sim.engine.setFaults({ stallMs: 400 });
    const ids = await Promise.all(Array.from({ length: 4 }, () => conversation()));
    const before = engineRequests();
    const turns = await Promise.all(ids.map((id) => turn(id, { content: 'What is single flight?' })));
    expect(engineRequests()).toBe(before + 1);
    const hits = turns.filter((t) => t.assistantMessage.cache.response.hit);
    expect(hits).toHaveLength(3);
    expect(new Set(turns.map((t) => t.assistantMessage.content)).size).toBe(1);
    expect(new Set(hits.map((t) => t.assistantMessage.cache.response.entryId)).size).toBe(1);
  });

  it('should honour per-request cache modes and maxAgeSeconds', async () => {
    const first = await ask('What is a prefix cache hit?');
    const bypass = await ask('What is a prefix cache hit?', { cache: { mode: 'bypass' } });
    expect(bypass.assistantMessage.cache.response).toEqual({ hit: false });
    expect(bypass.assistantMessage.usage.promptTokens).toBeGreaterThan(0);
    const stale = await ask('What is a prefix cache hit?', { cache: { maxAgeSeconds: 0 } });
    expect(stale.assistantMessage.cache.response.hit).toBe(false);
    const noStore = await ask('What is a radix tree?', { cache: { mode: 'no-store' } });
    expect(noStore.assistantMessage.cache.response.hit).toBe(false);
    expect((await ask('What is a radix tree?')).assistantMessage.cache.response.hit).toBe(false);
    expect((await ask('What is a prefix cache hit?')).assistantMessage.content).toBe(
      first.assistantMessage.content,
    );

    const invalid = await api(`${sut.url}/v1/conversations/${await conversation()}/turns`, {
      key: sut.keyA,
      body: { content: 'x', cache: { mode: 'sometimes' } },
    });
    expect(invalid.status).toBe(400);
    expect(invalid.body.detail).toContain('cache.mode');
  });

  it('should count hits, misses and guard rejections by type in GET /v1/cache/stats', async () => {
    const key = (await sut.keys.create(`stats-${Date.now()}`)).key;
    await ask('top 5 coffee shops in Seattle', {}, key);
    await ask('top 5 coffee shops in Seattle', {}, key);
    await ask('best five coffee shops in Seattle', {}, key);
    await ask('top 10 coffee shops in Seattle', {}, key);
    const stats = await api(`${sut.url}/v1/cache/stats`, { key });
    expect(stats.status).toBe(200);
    expect(stats.body.layers.response).toMatchObject({
      lookups: 4,
      hits: { exact: 1, semantic: 1 },
      misses: 2,
      hitRate: 0.5,
      entries: 2,
      semantic: { enabled: true },
    });
    expect(stats.body.layers.response.guardRejections.number).toBeGreaterThanOrEqual(1);
  });

  it('should invalidate with DELETE /v1/cache, across tenants only for admin keys', async () => {
    const hit = await ask('What is a KV block?').then(() => ask('What is a KV block?'));
    const entryId = hit.assistantMessage.cache.response.entryId as string;
    const removed = await api(`${sut.url}/v1/cache?entryId=${entryId}`, { key: sut.keyA, method: 'DELETE' });
    expect(removed.status).toBe(200);
    expect(removed.body).toEqual({ deleted: 1, tenants: 1 });
    expect((await ask('What is a KV block?')).assistantMessage.cache.response.hit).toBe(false);

    await ask('Billing question one', {}, sut.keyB);
    const forbidden = await api(`${sut.url}/v1/cache?tenantId=${sut.tenantB}`, {
      key: sut.keyA,
      method: 'DELETE',
    });
    expect(forbidden.status).toBe(403);
    const everywhere = await api(`${sut.url}/v1/cache?tenantId=*`, { key: sut.keyA, method: 'DELETE' });
    expect(everywhere.status).toBe(403);
    const byAdmin = await api(`${sut.url}/v1/cache?tenantId=${sut.tenantB}&agent=assistant`, {
      key: adminKey,
      method: 'DELETE',
    });
    expect(byAdmin.status).toBe(200);
    expect(byAdmin.body.deleted).toBeGreaterThanOrEqual(1);
    expect((await ask('Billing question one', {}, sut.keyB)).assistantMessage.cache.response.hit).toBe(false);

    const bad = await api(`${sut.url}/v1/cache?entryId=nope`, { key: sut.keyA, method: 'DELETE' });
    expect(bad.status).toBe(400);
  });
});

describe('response cache across API replicas (e2e)', () => {
  let sim: RunningSimulator;
  let replicaA: TestApp;
  let replicaB: TestApp;
  // Both replicas share it; the suite deletes it (startTestApp leaves a prefix it was given alone).
  const prefix = `kvchat-test-replicas-${randomUUID()}:`;

  beforeAll(async () => {
    sim = await startEngineSimulator({ timing: { timeScale: 0 }, replyTokens: { min: 24, max: 48 } });
    replicaA = await startTestApp({
      INFERENCE_ENDPOINTS: sim.baseURL,
      REDIS_KEY_PREFIX: prefix,
      PROMPT_DATE_IN_TAIL: 'false',
    });
    // The second replica shares the first one's database (its embedded PostgreSQL, over the wire) and Redis.
    const database = replicaA.running.app.get<DatabaseEndpoint>(DATABASE_ENDPOINT);
    replicaB = await startTestApp({
      INFERENCE_ENDPOINTS: sim.baseURL,
      REDIS_KEY_PREFIX: prefix,
      DATABASE_URL: database.url,
      PROMPT_DATE_IN_TAIL: 'false',
    });
  });
  afterAll(async () => {
    await replicaB?.close();
    await replicaA?.close();
    await sim?.close();
    await deleteRedisPrefix(prefix);
  });

  it('should answer identical questions arriving at two replicas with one engine call, and share hits', async () => {
    sim.engine.setFaults({ stallMs: 500 });
    try {
      const ask = async (app: TestApp, content: string) => {
        const c = await api(`${app.url}/v1/conversations`, { key: replicaA.keyA, body: {} });
        const t = await api(`${app.url}/v1/conversations/${c.body.id}/turns`, {
          key: replicaA.keyA,
          body: { content },
        });
        expect(t.status).toBe(201);
        return t.body;
      };
      const before = sim.engine.state().requests.started;
      const [onA, onB] = await Promise.all([
        ask(replicaA, 'What is a shared KV tier?'),
        ask(replicaB, 'What is a shared KV tier?'),
      ]);
      expect(sim.engine.state().requests.started).toBe(before + 1);
      expect(
        [onA.assistantMessage.cache.response.hit, onB.assistantMessage.cache.response.hit].sort(),
      ).toEqual([false, true]);
      expect(onA.assistantMessage.content).toBe(onB.assistantMessage.content);

      sim.engine.setFaults({ stallMs: 0 });
      await ask(replicaA, 'python sort list ascending');
      const paraphraseOnB = await ask(replicaB, 'how to sort a list in python ascending');
      expect(paraphraseOnB.assistantMessage.cache.response).toMatchObject({ hit: true, type: 'semantic' });
    } finally {
      sim.engine.setFaults({ stallMs: 0 });
    }
  });
});
