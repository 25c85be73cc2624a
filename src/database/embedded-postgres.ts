import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { PgliteSessionQueue } from './pglite-session-queue';

/** A running embedded PostgreSQL (PGlite + pgvector) reachable over the wire protocol. */
export interface EmbeddedPostgres {
  /** Connection URL for the standard PostgreSQL driver, e.g. `postgres://postgres@127.0.0.1:54329/postgres`. */
  url: string;
  port: number;
  /** Data directory, or `memory://` for an in-memory database. */
  dataDir: string;
  close(): Promise<void>;
}

/** Thrown when the embedded database cannot start (port taken, data dir unusable). */
export class EmbeddedDatabaseError extends Error {
  readonly code = 'EmbeddedDatabaseError';
}

async function openDataDir(pgDir: string): Promise<PGlite> {
  const db = await PGlite.create(pgDir, { extensions: { vector } });
  await db.exec('CREATE EXTENSION IF NOT EXISTS vector');
  return db;
}

/**
 * A fresh in-memory database. initdb dominates PGlite's start-up (about 7 s here against about 2 s
 * to load a data directory), so the first call in a machine's temp dir dumps a freshly initialised
 * cluster (with pgvector) as a template and later calls load it. The template is versioned by the
 * PGlite and pgvector packages; a corrupt or missing one is simply rebuilt.
 */
async function openInMemory(): Promise<PGlite> {
  // The packages do not export their package.json; their installed entry files identify the build.
  const version = createHash('sha256')
    .update(
      ['@electric-sql/pglite', '@electric-sql/pglite-pgvector']
        .map((m) => {
          const file = require.resolve(m);
          return `${file}:${statSync(file).size}:${statSync(file).mtimeMs}`;
        })
        .join('|'),
    )
    .digest('hex')
    .slice(0, 16);
  const template = join(tmpdir(), `kvchat-pglite-template-${version}.tar.gz`);
  if (existsSync(template)) {
    try {
      const dump = new File([readFileSync(template)], 'template.tar.gz', { type: 'application/x-gzip' });
      const db = await PGlite.create('memory://', { extensions: { vector }, loadDataDir: dump });
      await db.exec('CREATE EXTENSION IF NOT EXISTS vector');
      return db;
    } catch {
      // fall through: rebuild the template
    }
  }
  const db = await PGlite.create('memory://', { extensions: { vector } });
  await db.exec('CREATE EXTENSION IF NOT EXISTS vector');
  const dump = await db.dumpDataDir('gzip');
  const partial = `${template}.${process.pid}.tmp`;
  writeFileSync(partial, Buffer.from(await dump.arrayBuffer()));
  renameSync(partial, template);
  return db;
}

/**
 * Starts PGlite (PostgreSQL compiled to WASM) with the pgvector extension on `dataDir` and
 * serves it on `127.0.0.1:port` with pglite-socket, so MikroORM's ordinary PostgreSQL driver
 * (and psql) connect to it. PGlite is single-session: connections take turns, each keeping the
 * session for a whole exchange (an extended-query message group up to its Sync, a transaction up to
 * its end; PgliteSessionQueue), so a transaction on one connection makes the others wait.
 *
 * PGlite allows one process per data directory; while the service runs, other processes (the
 * keys CLI, psql) must use this port instead of opening the directory.
 *
 * @param dataDir a directory (created if missing) or `memory://` for a throwaway database
 * @param port loopback port, 0 = any free port
 * @throws EmbeddedDatabaseError if the port is taken or the directory cannot be opened
 */
export async function startEmbeddedPostgres(dataDir: string, port: number): Promise<EmbeddedPostgres> {
  const inMemory = dataDir === 'memory://';
  const pgDir = inMemory ? undefined : resolve(dataDir, 'pglite');
  if (pgDir) mkdirSync(pgDir, { recursive: true });
  let db: PGlite;
  try {
    db = pgDir ? await openDataDir(pgDir) : await openInMemory();
  } catch (e) {
    throw new EmbeddedDatabaseError(
      `Cannot open the embedded database at ${pgDir ?? 'memory'}: ${String(e)}`,
    );
  }
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port, maxConnections: 64 });
  try {
    serveOneExchangeAtATime(server, db);
    await server.start();
  } catch (e) {
    await db.close();
    const taken = (e as NodeJS.ErrnoException).code === 'EADDRINUSE';
    throw new EmbeddedDatabaseError(
      taken
        ? `EMBEDDED_DB_PORT ${port} is already in use: another kvchat is probably serving this data directory. ` +
          'Stop it, or set EMBEDDED_DB_PORT (or DATABASE_URL).'
        : `Cannot serve the embedded database on 127.0.0.1:${port}: ${String(e)}`,
    );
  }
  const actualPort = Number(server.getServerConn().split(':').pop());
  return {
    url: `postgres://postgres@127.0.0.1:${actualPort}/postgres`,
    port: actualPort,
    dataDir: pgDir ?? 'memory://',
    close: async () => {
      await server.stop();
      await db.close();
    },
  };
}

/**
 * Puts PgliteSessionQueue in place of pglite-socket's own queue, which lets connections' messages
 * interleave inside an exchange (see PgliteSessionQueue). The server keeps its queue in a private
 * field that each connection's handler takes when it connects, so this runs before `start()`; if a
 * pglite-socket release renames the field, the embedded database refuses to start rather than run
 * with the interleaving queue.
 */
function serveOneExchangeAtATime(server: PGLiteSocketServer, db: PGlite): void {
  const internals = server as unknown as { queryQueue?: unknown };
  if (internals.queryQueue === undefined) {
    throw new EmbeddedDatabaseError(
      'pglite-socket no longer keeps its query queue in `queryQueue`: src/database/pglite-session-queue.ts must be adapted.',
    );
  }
  internals.queryQueue = new PgliteSessionQueue(db);
}
