import { MikroORM } from '@mikro-orm/postgresql';
import { runKeysCli } from '../../src/cli/keys.cli';
import { hashApiKey } from '../../src/auth/api-key.service';
import { buildOrmOptions, migratorOf } from '../../src/database/mikro-orm.options';
import { ENTITIES } from '../../src/entities';
import { startEngineSimulator, type RunningSimulator } from '../../src/simulator/simulator.server';
import { createScratchDatabase, type ScratchDatabase } from '../factories/postgres';
import { api, startTestApp, type TestApp } from '../factories/test-app';
import { deleteRedisPrefix } from '../factories/redis';

/**
 * Against the local PostgreSQL server: migrations from an empty database, keys stored hashed,
 * the keys CLI, and turns serialised across two API replicas sharing PostgreSQL and Redis.
 */
describe('PostgreSQL server (integration)', () => {
  let db: ScratchDatabase;
  let sim: RunningSimulator;

  beforeAll(async () => {
    db = await createScratchDatabase();
    sim = await startEngineSimulator({ timing: { timeScale: 0 }, replyTokens: { min: 8, max: 16 } });
  });

  afterAll(async () => {
    await sim?.close();
    await db?.drop();
  });

  it('should migrate an empty database up and down and up again', async () => {
    const sut = await MikroORM.init(buildOrmOptions(db.url, ENTITIES, { pool: { min: 0, max: 2 } }));
    try {
      const migrator = await migratorOf(sut);
      const applied = await migrator.up();
      expect(applied.length).toBeGreaterThan(0);
      expect(await migrator.getPendingMigrations()).toHaveLength(0);
      const tables = await sut.em
        .getConnection()
        .execute(`select table_name from information_schema.tables where table_schema = 'public'`);
      expect(tables.map((t) => t.table_name)).toEqual(
        expect.arrayContaining(['tenants', 'api_keys', 'conversations', 'messages', 'mikro_orm_migrations']),
      );
      // The committed migrations describe exactly the entities: no schema drift.
      const diff = await sut.getSchemaGenerator().getUpdateSchemaSQL({ wrap: false });
      expect(diff.trim()).toBe('');
      await migrator.down({ to: 0 });
      const after = await sut.em
        .getConnection()
        .execute(
          `select count(*)::int as n from information_schema.tables where table_schema = 'public' and table_name = 'messages'`,
        );
      expect(after[0].n).toBe(0);
      await migrator.up();
    } finally {
      await sut.close(true);
    }
  });

  it('should create a key with the CLI, print it alone on the last line, store only its hash, and revoke it', async () => {
    const env = { ...process.env, DATABASE_URL: db.url };
    const out: string[] = [];
    const sink = { write: (s: string) => out.push(s) };
    await runKeysCli(['node', 'keys', 'create', '--tenant', 'cli-tenant', '--name', 'ci'], env, sink, {
      write: () => true,
    });
    const lines = out.join('').trimEnd().split('\n');
    const key = lines.at(-1) ?? '';
    expect(key).toMatch(/^kvc_[A-Za-z0-9_-]{43}$/);

    const orm = await MikroORM.init(buildOrmOptions(db.url, ENTITIES, { pool: { min: 0, max: 1 } }));
    try {
      const rows = await orm.em.getConnection().execute(`select * from api_keys`);
      const serialized = JSON.stringify(rows);
      expect(serialized).not.toContain(key);
      expect(rows.map((r) => r.key_hash)).toContain(hashApiKey(key));
    } finally {
      await orm.close(true);
    }

    out.length = 0;
    await runKeysCli(['node', 'keys', 'revoke', key], env, sink, { write: () => true });
    expect(out.join('')).toMatch(/Revoked key kvc_/);
    out.length = 0;
    await runKeysCli(['node', 'keys', 'list', '--tenant', 'cli-tenant'], env, sink, { write: () => true });
    expect(out.join('')).toMatch(/revoked/);
  });

  describe('two API replicas on one database', () => {
    let a: TestApp;
    let b: TestApp;

    beforeAll(async () => {
      const env = {
        DATABASE_URL: db.url,
        INFERENCE_ENDPOINTS: sim.baseURL,
        REDIS_KEY_PREFIX: `kvchat-test-shared-${db.name}:`,
      };
      a = await startTestApp(env);
      b = await startTestApp(env);
    });

    afterAll(async () => {
      await a?.close();
      await b?.close();
      await deleteRedisPrefix(`kvchat-test-shared-${db.name}:`);
    });

    it('should serialise turns posted to one conversation through both replicas', async () => {
      const id = (await api(`${a.url}/v1/conversations`, { key: a.keyA, body: {} })).body.id as string;
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          api(`${i % 2 === 0 ? a.url : b.url}/v1/conversations/${id}/turns`, {
            key: a.keyA,
            body: { content: `turn ${i}`, maxTokens: 4 },
          }),
        ),
      );
      expect(results.map((r) => r.status)).toEqual(Array(8).fill(201));
      const rows = (await api(`${b.url}/v1/conversations/${id}/messages?limit=100`, { key: a.keyA })).body
        .data as any[];
      expect(rows.map((m) => m.sequence)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
      expect(rows.filter((m) => m.role === 'user')).toHaveLength(8);
    });

    it('should keep tenants apart on the server database', async () => {
      const id = (await api(`${a.url}/v1/conversations`, { key: a.keyA, body: { title: 'mine' } })).body
        .id as string;
      expect((await api(`${b.url}/v1/conversations/${id}`, { key: a.keyB })).status).toBe(404);
      expect((await api(`${b.url}/v1/conversations/${id}`, { key: a.keyA })).status).toBe(200);
    });
  });
});
