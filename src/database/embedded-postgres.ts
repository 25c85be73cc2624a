import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

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

/**
 * Starts PGlite (PostgreSQL compiled to WASM) with the pgvector extension on `dataDir` and
 * serves it on `127.0.0.1:port` with pglite-socket, so MikroORM's ordinary PostgreSQL driver
 * (and psql) connect to it. PGlite is single-session: pglite-socket queues queries and keeps a
 * transaction on the connection that opened it.
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
    db = await PGlite.create(pgDir ?? 'memory://', { extensions: { vector } });
    await db.exec('CREATE EXTENSION IF NOT EXISTS vector');
  } catch (e) {
    throw new EmbeddedDatabaseError(`Cannot open the embedded database at ${pgDir ?? 'memory'}: ${String(e)}`);
  }
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port, maxConnections: 64 });
  try {
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
