import { PgVectorStore } from '../../src/database/vector-store';
import { SemanticIndex } from '../../src/caching/semantic-index';
import { createScratchDatabase, type ScratchDatabase } from '../factories/postgres';
import {
  type CachingHarness,
  engineResult,
  scopeFor,
  startCachingHarness,
} from '../factories/response-cache';

/**
 * The response cache on a PostgreSQL server without pgvector (the local PostgreSQL): semantic
 * lookups switch off with a reason, exact caching keeps working.
 */
describe('response cache on PostgreSQL without pgvector (integration)', () => {
  let db: ScratchDatabase;
  let h: CachingHarness;

  beforeAll(async () => {
    db = await createScratchDatabase();
    h = await startCachingHarness({ DATABASE_URL: db.url });
  });
  afterAll(async () => {
    await h?.close();
    await db?.drop();
  });

  it('should report vectors unavailable and semantic lookups off, with the reason', async () => {
    expect(await h.app.get(PgVectorStore).support()).toMatchObject({
      available: false,
      reason: expect.stringContaining('pgvector'),
    });
    expect(await h.app.get(SemanticIndex).collection()).toBeNull();
    expect(h.app.get(SemanticIndex).describe()).toMatchObject({
      enabled: false,
      reason: expect.stringContaining('pgvector'),
    });
  });

  it('should still answer exact repeats from the cache, and paraphrases from the engine', async () => {
    const scope = scopeFor(await h.tenant());
    const compute = jest.fn(() => Promise.resolve(engineResult('sorted')));
    await h.cache.serve({ scope, question: 'python sort list ascending' }, compute);
    const repeat = await h.cache.serve({ scope, question: 'Python sort list ascending?' }, compute);
    expect(repeat.report).toMatchObject({ hit: true, type: 'exact' });
    const paraphrase = await h.cache.serve(
      { scope, question: 'how to sort a list in python ascending' },
      compute,
    );
    expect(paraphrase.report).toEqual({ hit: false });
    expect(compute).toHaveBeenCalledTimes(2);
  });
});
