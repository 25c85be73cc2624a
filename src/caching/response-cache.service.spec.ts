import { replayDeltas } from './replay';
import { ResponseCacheAdmin } from './response-cache-admin.service';
import { buildInMemoryResponseCache } from '../../test/fakes/in-memory-response-cache';
import type { ChatResult } from '../inference/inference.types';
import type { ResponseCacheScope } from './response-cache.types';
import { questionHash, scopeFingerprint } from './scope';
import type { ResponseCacheVerifier } from './verifier';

const TENANT = '00000000-0000-4000-8000-000000000001';

const scope = (overrides: Partial<ResponseCacheScope> = {}): ResponseCacheScope => ({
  tenantId: TENANT,
  agent: 'assistant',
  model: 'test-model',
  templateVersion: 'test@1',
  params: { temperature: 0 },
  context: 'none',
  ...overrides,
});

const answer = (content: string, overrides: Partial<ChatResult> = {}): ChatResult => ({
  content,
  finishReason: 'stop',
  model: 'test-model',
  usage: { promptTokens: 40, completionTokens: 12, cachedTokens: 0 },
  replica: 'http://engine-0/v1',
  timings: { ttftMs: 5, totalMs: 20, itlMs: 1 },
  ...overrides,
});

/** A promise the test settles when it chooses (an explicit gate instead of a sleep). */
function gate<T>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

describe('ResponseCache (in-memory store and vector index)', () => {
  it('should answer from the engine and store nothing when the cache is disabled', async () => {
    const { sut, store } = buildInMemoryResponseCache({ RESPONSE_CACHE_ENABLED: false });
    const compute = jest.fn(() => Promise.resolve(answer('Paris.')));

    const first = await sut.serve({ scope: scope(), question: 'Capital of France?' }, compute);
    const again = await sut.serve({ scope: scope(), question: 'Capital of France?' }, compute);

    expect(compute).toHaveBeenCalledTimes(2);
    expect(first.report).toBeUndefined();
    expect(again.cached).toBeNull();
    expect(await store.size(TENANT)).toBe(0);
  });

  it('should store a miss, then replay it as an exact hit as a stream without calling the engine', async () => {
    const { sut, stats, vectors } = buildInMemoryResponseCache();
    const compute = jest.fn(() => Promise.resolve(answer('The capital of France is Paris.')));
    const miss = await sut.serve({ scope: scope(), question: 'What is the capital of France?' }, compute);

    const hit = await sut.serve({ scope: scope(), question: 'what is the capital of france' }, compute);
    // The caller replays a hit to its client as word-sized deltas (AnswerService, ChatCompletionsService).
    const deltas = replayDeltas(hit.result.content);

    expect(miss.report).toEqual({ hit: false });
    expect(miss.storedEntryId).toEqual(expect.any(String));
    expect(vectors.size).toBe(1);
    expect(compute).toHaveBeenCalledTimes(1);
    expect(hit.report).toEqual({ hit: true, type: 'exact', similarity: 1, entryId: miss.storedEntryId });
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join('')).toBe('The capital of France is Paris.');
    expect(hit.result).toMatchObject({
      replica: 'response-cache',
      usage: { promptTokens: 0, completionTokens: 0, cachedTokens: 0 },
    });
    expect(hit.cached?.usage).toEqual({ promptTokens: 40, completionTokens: 12, cachedTokens: 0 });
    expect(await stats.forTenant(TENANT)).toMatchObject({
      lookups: 2,
      hits: { exact: 1, semantic: 0 },
      misses: 1,
      stores: 1,
    });
  });

  it('should purge only the answers that cited a changed document, with their vectors', async () => {
    const { sut, store, vectors, stats, semantic } = buildInMemoryResponseCache();
    const admin = new ResponseCacheAdmin(store, stats, semantic, vectors);
    const ask = (question: string, documents?: string[]) =>
      sut.serve({ scope: scope({ agent: 'knowledge' }), question, documents }, () =>
        Promise.resolve(answer(`About ${question}`)),
      );
    const tent = await ask('How long is the tent warranty?', ['doc-tent']);
    const both = await ask('Can I cook inside the tent?', ['doc-tent', 'doc-stove']);
    const stove = await ask('How fast does the stove boil water?', ['doc-stove']);
    const plain = await ask('What is the capital of France?');
    expect((await store.get(TENANT, tent.storedEntryId!))?.documents).toEqual(['doc-tent']);
    expect(vectors.size).toBe(4);

    await expect(admin.invalidateDocument(TENANT, 'doc-tent')).resolves.toBe(2);

    expect(await store.get(TENANT, tent.storedEntryId!)).toBeNull();
    expect(await store.get(TENANT, both.storedEntryId!)).toBeNull();
    expect(await store.get(TENANT, stove.storedEntryId!)).not.toBeNull();
    expect(await store.get(TENANT, plain.storedEntryId!)).not.toBeNull();
    expect(vectors.size).toBe(2);
    expect((await ask('How long is the tent warranty?', ['doc-tent'])).report).toEqual({ hit: false });
    expect((await ask('How fast does the stove boil water?', ['doc-stove'])).report).toMatchObject({
      hit: true,
    });
    await expect(admin.invalidateDocument(TENANT, 'doc-unknown')).resolves.toBe(0);
  });

  it('should serve a paraphrase as a semantic hit, and its repeat as an exact hit on the same entry', async () => {
    const { sut, stats } = buildInMemoryResponseCache();
    const compute = jest.fn(() => Promise.resolve(answer('Use the reset link on the sign-in page.')));
    const stored = await sut.serve({ scope: scope(), question: 'How do I reset my password?' }, compute);

    const semantic = await sut.serve({ scope: scope(), question: 'How can I reset my password?' }, compute);
    const repeat = await sut.serve({ scope: scope(), question: 'How can I reset my password?' }, compute);

    expect(compute).toHaveBeenCalledTimes(1);
    expect(semantic.report).toMatchObject({ hit: true, type: 'semantic', entryId: stored.storedEntryId });
    expect(semantic.report?.similarity).toBeGreaterThanOrEqual(0.65);
    expect(semantic.report?.similarity).toBeLessThan(1);
    expect(repeat.report).toMatchObject({ hit: true, type: 'exact', entryId: stored.storedEntryId });
    expect((await stats.forTenant(TENANT)).hits).toEqual({ exact: 1, semantic: 1 });
  });

  it('should not serve a close question another scope stored (another tenant, agent or context)', async () => {
    const { sut } = buildInMemoryResponseCache();
    const compute = jest.fn(() => Promise.resolve(answer('Paris.')));
    await sut.serve({ scope: scope(), question: 'What is the capital of France?' }, compute);

    const other = await sut.serve(
      { scope: scope({ context: 'after-turn-3' }), question: 'What is the capital of France?' },
      compute,
    );

    expect(other.report).toEqual({ hit: false });
    expect(compute).toHaveBeenCalledTimes(2);
  });

  it('should reject a close-but-different question with a guard, call the engine and say which guard', async () => {
    const { sut, stats } = buildInMemoryResponseCache();
    await sut.serve({ scope: scope(), question: 'Is the store open on Sunday?' }, () =>
      Promise.resolve(answer('Yes, from 10 to 4.')),
    );
    const compute = jest.fn(() => Promise.resolve(answer('It is closed only on holidays.')));

    const served = await sut.serve({ scope: scope(), question: 'Is the store not open on Sunday?' }, compute);

    expect(compute).toHaveBeenCalledTimes(1);
    expect(served.report).toEqual({ hit: false, guard: 'negation' });
    expect(served.result.content).toBe('It is closed only on holidays.');
    expect((await stats.forTenant(TENANT)).guardRejections).toEqual({ negation: 1 });
  });

  it('should reject a candidate the verifier does not confirm', async () => {
    const verifier: ResponseCacheVerifier = { name: 'never', verify: jest.fn(() => Promise.resolve(false)) };
    const { sut, stats } = buildInMemoryResponseCache({}, verifier);
    await sut.serve({ scope: scope(), question: 'How do I reset my password?' }, () =>
      Promise.resolve(answer('Use the reset link.')),
    );

    const served = await sut.serve({ scope: scope(), question: 'How can I reset my password?' }, () =>
      Promise.resolve(answer('Fresh answer.')),
    );

    expect(verifier.verify).toHaveBeenCalledTimes(1);
    expect(served.report).toEqual({ hit: false, guard: 'verifier' });
    expect((await stats.forTenant(TENANT)).verifierRejections).toBe(1);
  });

  it.each([
    ['cut by the token budget', answer('The capital of Fr', { finishReason: 'length' })],
    ['empty', answer('   ')],
  ])('should not store an answer that is %s', async (_case, incomplete) => {
    const { sut, store, vectors } = buildInMemoryResponseCache();
    const compute = jest.fn(() => Promise.resolve(incomplete));

    const first = await sut.serve({ scope: scope(), question: 'What is the capital of France?' }, compute);
    const again = await sut.serve({ scope: scope(), question: 'What is the capital of France?' }, compute);

    expect(first.storedEntryId).toBeUndefined();
    expect(again.report).toEqual({ hit: false });
    expect(compute).toHaveBeenCalledTimes(2);
    expect(await store.size(TENANT)).toBe(0);
    expect(vectors.size).toBe(0);
  });

  it('should not store an answer whose engine call failed, and rethrow the failure', async () => {
    const { sut, store } = buildInMemoryResponseCache();
    const failure = new Error('engine down');

    await expect(
      sut.serve({ scope: scope(), question: 'Capital of France?' }, () => Promise.reject(failure)),
    ).rejects.toBe(failure);
    expect(await store.size(TENANT)).toBe(0);
  });

  it('should make identical concurrent misses wait for one engine call (single flight in one process)', async () => {
    const { sut, stats } = buildInMemoryResponseCache();
    const engine = gate<ChatResult>();
    const compute = jest.fn(() => engine.promise);
    const question = 'What is rendezvous hashing?';

    const served = Promise.all([1, 2, 3].map(() => sut.serve({ scope: scope(), question }, compute)));
    engine.open(answer('A way to pick a replica per key.'));
    const results = await served;

    expect(compute).toHaveBeenCalledTimes(1);
    expect(results.map((r) => r.result.content)).toEqual(Array(3).fill('A way to pick a replica per key.'));
    expect(results.filter((r) => r.report?.hit)).toHaveLength(2);
    expect((await stats.forTenant(TENANT)).singleFlightWaits).toBe(2);
  });

  it('should wait for another replica holding the lock and serve the answer it stores', async () => {
    const { sut, store } = buildInMemoryResponseCache();
    const question = 'What is a cache salt?';
    const release = store.holdFlight(TENANT, scopeFingerprint(scope()), questionHash(question));
    // The other replica stores its answer once this request has found the lock taken.
    const acquire = store.acquireFlight.bind(store);
    jest.spyOn(store, 'acquireFlight').mockImplementationOnce(async (...args) => {
      const lock = await acquire(...args);
      await store.put(
        {
          tenantId: TENANT,
          scope: scopeFingerprint(scope()),
          agent: 'assistant',
          model: 'test-model',
          templateVersion: 'test@1',
          question,
          content: 'From the other replica.',
          finishReason: 'stop',
          usage: { promptTokens: 1, completionTokens: 1, cachedTokens: 0 },
        },
        questionHash(question),
      );
      release();
      return lock;
    });
    const compute = jest.fn(() => Promise.resolve(answer('Mine.')));

    const served = await sut.serve({ scope: scope(), question }, compute);

    expect(compute).not.toHaveBeenCalled();
    expect(served.result.content).toBe('From the other replica.');
    expect(served.report).toMatchObject({ hit: true, type: 'exact' });
  });

  it('should call the engine itself when the replica holding the lock gives up without an answer', async () => {
    const { sut, store } = buildInMemoryResponseCache();
    const question = 'What is a cache salt?';
    const release = store.holdFlight(TENANT, scopeFingerprint(scope()), questionHash(question));
    const acquire = store.acquireFlight.bind(store);
    jest.spyOn(store, 'acquireFlight').mockImplementationOnce(async (...args) => {
      const lock = await acquire(...args);
      release();
      return lock;
    });
    const compute = jest.fn(() => Promise.resolve(answer('Mine.')));

    const served = await sut.serve({ scope: scope(), question }, compute);

    expect(compute).toHaveBeenCalledTimes(1);
    expect(served.result.content).toBe('Mine.');
    expect(served.storedEntryId).toEqual(expect.any(String));
  });

  it('should answer from the engine when the store fails, without failing the request', async () => {
    const { sut, store } = buildInMemoryResponseCache();
    store.fail = new Error('store unreachable');
    const compute = jest.fn(() => Promise.resolve(answer('Paris.')));

    const served = await sut.serve({ scope: scope(), question: 'Capital of France?' }, compute);

    expect(served.result.content).toBe('Paris.');
    expect(served.report).toEqual({ hit: false });
    expect(served.storedEntryId).toBeUndefined();
  });

  it('should still serve exact hits when the vector index is unavailable', async () => {
    const { sut, vectors, semantic } = buildInMemoryResponseCache();
    vectors.unavailable = 'no vectors here';
    const compute = jest.fn(() => Promise.resolve(answer('Use the reset link.')));
    await sut.serve({ scope: scope(), question: 'How do I reset my password?' }, compute);

    const exact = await sut.serve({ scope: scope(), question: 'how do I reset my password' }, compute);
    const paraphrase = await sut.serve({ scope: scope(), question: 'How can I reset my password?' }, compute);

    expect(semantic.describe()).toEqual({ enabled: false, reason: 'no vectors here' });
    expect(exact.report).toMatchObject({ hit: true, type: 'exact' });
    expect(paraphrase.report).toEqual({ hit: false });
    expect(compute).toHaveBeenCalledTimes(2);
  });

  it('should treat an answer older than maxAgeSeconds as a miss', async () => {
    const { sut, store } = buildInMemoryResponseCache();
    store.now = Date.now() - 120_000;
    await sut.serve({ scope: scope(), question: 'Capital of France?' }, () =>
      Promise.resolve(answer('Paris.')),
    );
    const compute = jest.fn(() => Promise.resolve(answer('Paris, still.')));

    const served = await sut.serve(
      { scope: scope(), question: 'Capital of France?', control: { maxAgeSeconds: 60 } },
      compute,
    );

    expect(compute).toHaveBeenCalledTimes(1);
    expect(served.report).toEqual({ hit: false });
  });

  it('should honour the cache modes: bypass neither reads nor writes, no-cache writes, no-store reads', async () => {
    const { sut, store } = buildInMemoryResponseCache();
    const compute = jest.fn(() => Promise.resolve(answer('Paris.')));
    const ask = (mode: 'bypass' | 'no-cache' | 'no-store') =>
      sut.serve({ scope: scope(), question: 'Capital of France?', control: { mode } }, compute);

    const bypass = await ask('bypass');
    const sizeAfterBypass = await store.size(TENANT);
    const noCache = await ask('no-cache');
    const noStore = await ask('no-store');

    expect(bypass.report).toEqual({ hit: false });
    expect(sizeAfterBypass).toBe(0);
    expect(noCache.storedEntryId).toEqual(expect.any(String));
    expect(noStore.report).toMatchObject({ hit: true, type: 'exact' });
    expect(compute).toHaveBeenCalledTimes(2);
  });

  it('should delete the vectors of entries evicted past the tenant bound', async () => {
    const { sut, store, vectors } = buildInMemoryResponseCache({ RESPONSE_CACHE_MAX_ENTRIES_PER_TENANT: 1 });
    const first = await sut.serve({ scope: scope(), question: 'Capital of France?' }, () =>
      Promise.resolve(answer('Paris.')),
    );
    store.now += 1;

    await sut.serve({ scope: scope(), question: 'Capital of Italy?' }, () =>
      Promise.resolve(answer('Rome.')),
    );

    expect(await store.get(TENANT, first.storedEntryId!)).toBeNull();
    expect(await store.size(TENANT)).toBe(1);
    expect(vectors.size).toBe(1);
  });
});
