import { Socket } from 'node:net';
import { MikroORM } from '@mikro-orm/postgresql';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/database/embedded-postgres';
import { buildOrmOptions } from '../../src/database/mikro-orm.options';
import { ENTITIES } from '../../src/entities';
import { until } from '../factories/until';

// Boots PGlite: slow on a busy shared machine.
jest.setTimeout(120_000);

/**
 * The embedded database serves one PGlite session to many pooled connections. Each connection must
 * have the session for a whole exchange: with pglite-socket's own queue, another connection's
 * statement could replace a parameterised query's between its Parse and Bind (its parameters then
 * answered for the other statement, or its Bind failed and PGlite skipped everything up to its Sync,
 * including a third connection's `BEGIN`, which was never answered: the stall of `bench:rag`).
 */
describe('embedded PostgreSQL over the wire (integration, PGlite)', () => {
  let db: EmbeddedPostgres;
  let orm: MikroORM;

  beforeAll(async () => {
    db = await startEmbeddedPostgres('memory://', 0);
    orm = await MikroORM.init(
      buildOrmOptions(db.url, ENTITIES, {
        pool: { min: 0, max: 8 },
        discovery: { warnWhenNoEntities: false },
      }),
    );
    await orm.em.getConnection().execute('create table probe (id serial primary key, writer int, n int)');
  });

  afterAll(async () => {
    await orm?.close(true);
    await db?.close();
  });

  /** Fails, naming what was under way, when `work` has not settled by the deadline. */
  async function settles<T>(work: Promise<T>, what: () => string, ms = 60_000): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`stalled after ${ms} ms: ${what()}`)), ms);
    });
    try {
      return await Promise.race([work, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  it('should answer every connection, each with its own parameters, while others run transactions', async () => {
    const writers = 3;
    const transactions = 20;
    const readers = 5;
    const reads = 60;
    const progress = { committed: 0, read: 0 };
    const write = async (writer: number) => {
      for (let n = 0; n < transactions; n++) {
        await orm.em.fork().transactional(async (em) => {
          await em.execute('insert into probe (writer, n) values (?, ?)', [writer, n]);
          await em.execute('select count(*) from probe where writer = ?', [writer]);
        });
        progress.committed += 1;
      }
    };
    const read = async (reader: number) => {
      for (let i = 0; i < reads; i++) {
        // Bound parameters (the extended protocol: Parse, Bind, Describe, Execute, Sync), as the ORM's
        // entity queries send them; each reader its own statement text, so that run on another
        // connection's unnamed statement it would answer wrong.
        const result = await orm.em.getKnex().raw<{
          rows: unknown[];
        }>(`select ?::int as reader, ?::int as i, '${'r'.repeat(reader + 1)}' as tag`, [reader, i]);
        const rows = result.rows;
        expect(rows).toEqual([{ reader, i, tag: 'r'.repeat(reader + 1) }]);
        progress.read += 1;
      }
    };
    await settles(
      Promise.all([
        ...Array.from({ length: writers }, (_, w) => write(w)),
        ...Array.from({ length: readers }, (_, r) => read(r)),
      ]),
      () =>
        `${progress.committed}/${writers * transactions} transactions, ${progress.read}/${readers * reads} reads`,
    );
    const [{ n }] = await orm.em.fork().execute<{ n: number }[]>('select count(*)::int as n from probe');
    expect(n).toBe(writers * transactions);
  });

  it('should roll back the transaction of a connection that closes inside it, and serve the others', async () => {
    // A raw client: the startup message, then BEGIN and an insert, then the socket is cut.
    const socket = new Socket();
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(db.port, '127.0.0.1', resolve);
    });
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    const startup = Buffer.concat([Buffer.alloc(8), Buffer.from('user\0postgres\0database\0postgres\0\0')]);
    startup.writeInt32BE(startup.length, 0);
    startup.writeInt32BE(196608, 4); // protocol 3.0
    const query = (sql: string) => {
      const text = Buffer.from(`${sql}\0`);
      const header = Buffer.alloc(5);
      header.write('Q', 0);
      header.writeInt32BE(4 + text.length, 1);
      return Buffer.concat([header, text]);
    };
    const readyCount = () => received.split('Z\0\0\0\x05').length - 1;
    socket.write(startup);
    await until(() => readyCount() >= 1, 'the raw connection to start');
    socket.write(query('begin; insert into probe (writer, n) values (99, 99)'));
    await until(() => readyCount() >= 2, 'BEGIN and the insert on the raw connection');
    expect(received.endsWith('Z\0\0\0\x05T')).toBe(true); // in a transaction block
    socket.destroy();

    const rows = await settles(
      orm.em.fork().execute<{ n: number }[]>('select count(*)::int as n from probe where writer = 99'),
      () => 'a query after a connection closed inside its transaction',
    );
    expect(rows).toEqual([{ n: 0 }]);
  });
});
