import { randomBytes } from 'node:crypto';
import { MikroORM } from '@mikro-orm/postgresql';
import { buildOrmOptions } from '../src/database/mikro-orm.options';
import { ENTITIES } from '../src/entities';

/** The local PostgreSQL server (trust auth), as CI and every developer machine has it (TEST_POSTGRES_URL). */
export const LOCAL_POSTGRES = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A throwaway database on a PostgreSQL server, for one test suite or one benchmark run. */
export interface ScratchDatabase {
  /** The database's URL: `serverUrl` with its database name replaced. */
  url: string;
  name: string;
  /** Drops it (`drop database if exists ... with (force)`). @throws the server's error */
  drop(): Promise<void>;
}

/** Runs one statement on the server's maintenance database through a one-connection ORM. */
async function onServer(serverUrl: string, sql: string): Promise<void> {
  const orm = await MikroORM.init(
    buildOrmOptions(serverUrl, ENTITIES, {
      pool: { min: 0, max: 1 },
      discovery: { warnWhenNoEntities: false },
    }),
  );
  try {
    await orm.em.getConnection().execute(sql);
  } finally {
    await orm.close(true);
  }
}

/**
 * Creates an empty database on the server (tests, bench:load, bench:turn, bench:usage share this one way).
 * @param name the database's name (default `kvchat_test_<12 hex>`)
 * @param serverUrl a URL of the server, on any database (default LOCAL_POSTGRES)
 * @throws the server's error (down, name taken)
 */
export async function createScratchDatabase(
  name = `kvchat_test_${randomBytes(6).toString('hex')}`,
  serverUrl = LOCAL_POSTGRES,
): Promise<ScratchDatabase> {
  await onServer(serverUrl, `create database "${name}"`);
  return {
    url: serverUrl.replace(/\/[^/]*$/, `/${name}`),
    name,
    drop: () => onServer(serverUrl, `drop database if exists "${name}" with (force)`),
  };
}
