import { randomUUID } from 'node:crypto';
import { MikroORM } from '@mikro-orm/postgresql';
import { Tenant } from '../../src/auth/tenant.entity';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/database/embedded-postgres';
import { buildOrmOptions, migratorOf } from '../../src/database/mikro-orm.options';
import { ENTITIES } from '../../src/entities';
import { PgVectorStore, vectorTableName } from '../../src/database/vector-store';

/** pgvector through MikroORM's connection on the embedded PGlite: tables per model and dimension, filtered search. */
describe('PgVectorStore (integration, PGlite + pgvector)', () => {
  let pg: EmbeddedPostgres;
  let orm: MikroORM;
  let sut: PgVectorStore;
  let tenantA: string;
  let tenantB: string;

  const unit = (...v: number[]): number[] => {
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  };

  beforeAll(async () => {
    pg = await startEmbeddedPostgres('memory://', 0);
    orm = await MikroORM.init({ ...buildOrmOptions(pg.url, ENTITIES, { pool: { min: 0, max: 4 } }) });
    await (await migratorOf(orm)).up();
    sut = new PgVectorStore(orm.em);
    const em = orm.em.fork();
    tenantA = em.create(Tenant, { name: `a-${randomUUID()}` }).id;
    tenantB = em.create(Tenant, { name: `b-${randomUUID()}` }).id;
    await em.flush();
  });
  afterAll(async () => {
    await orm?.close(true);
    await pg?.close();
  });

  it('should find pgvector and create one table per model and dimension with an HNSW index', async () => {
    expect(await sut.support()).toMatchObject({
      available: true,
      version: expect.stringMatching(/^\d+\.\d+/),
    });
    const small = await sut.collection({ name: 'test', model: 'model-a', dimension: 3 });
    const other = await sut.collection({ name: 'test', model: 'model-b', dimension: 3 });
    expect(small.table).not.toBe(other.table);
    expect(small.table).toBe(vectorTableName({ name: 'test', model: 'model-a', dimension: 3 }));
    const indexes = await orm.em
      .getConnection()
      .execute<{ indexdef: string }[]>(`select indexdef from pg_indexes where tablename = ?`, [small.table]);
    expect(indexes.map((i) => i.indexdef).join('\n')).toMatch(/USING hnsw \(embedding vector_cosine_ops\)/);
    expect(
      vectorTableName({ name: 'response_cache', model: 'x'.repeat(300), dimension: 4096 }).length,
    ).toBeLessThanOrEqual(63);
  });

  it('should scan HNSW indexes iteratively in every pooled session, so a search is one statement', async () => {
    const c = await sut.collection({ name: 'test', model: 'model-a', dimension: 3 });
    expect(c.iterativeScan).toBe(true);
    await c.search(tenantA, 'ns-iterative', unit(1, 0, 0), 3);
    const [row] = await orm.em
      .getConnection()
      .execute<{ setting: string }[]>(`select current_setting('hnsw.iterative_scan') as setting`);
    expect(row.setting).toBe('relaxed_order');
  });

  it('should return the nearest vectors of one tenant and namespace only, most similar first', async () => {
    const c = await sut.collection({ name: 'test', model: 'model-a', dimension: 3 });
    const ids = Array.from({ length: 5 }, () => randomUUID());
    await c.upsert([
      {
        id: ids[0],
        tenantId: tenantA,
        namespace: 's1',
        attributes: { agent: 'x' },
        embedding: unit(1, 0, 0),
      },
      {
        id: ids[1],
        tenantId: tenantA,
        namespace: 's1',
        attributes: { agent: 'y' },
        embedding: unit(1, 1, 0),
      },
      {
        id: ids[2],
        tenantId: tenantA,
        namespace: 's2',
        attributes: { agent: 'x' },
        embedding: unit(1, 0, 0),
      },
      {
        id: ids[3],
        tenantId: tenantB,
        namespace: 's1',
        attributes: { agent: 'x' },
        embedding: unit(1, 0, 0),
      },
      {
        id: ids[4],
        tenantId: tenantA,
        namespace: 's1',
        attributes: {},
        embedding: unit(1, 0, 0),
        expiresAt: new Date(Date.now() - 1000),
      },
    ]);
    const found = await c.search(tenantA, 's1', unit(1, 0.1, 0), 10);
    expect(found.map((m) => m.id)).toEqual([ids[0], ids[1]]);
    expect(found[0].similarity).toBeGreaterThan(found[1].similarity);
    expect(found[0].attributes).toEqual({ agent: 'x' });
    expect(await c.search(tenantA, 's1', unit(1, 0.1, 0), 10, 0.9)).toHaveLength(1);

    expect(await c.delete({ tenantId: tenantA, attributes: { agent: 'y' } })).toBe(1);
    expect(await c.purgeExpired()).toBe(1);
    expect(await sut.deleteEverywhere('test', { tenantId: tenantB })).toBe(1);
    expect((await c.search(tenantB, 's1', unit(1, 0, 0), 10)).length).toBe(0);
  });
});
