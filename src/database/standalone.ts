import { createConnection } from 'node:net';
import { MikroORM } from '@mikro-orm/postgresql';
import type { DatabaseConfig } from '../config/database.config';
import { startEmbeddedPostgres } from './embedded-postgres';
import { buildOrmOptions, type EntityList, migratorOf } from './mikro-orm.options';

/** True when something accepts TCP connections on 127.0.0.1:port within `timeoutMs`. */
export function isPortOpen(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Opens the database for a command-line tool, outside the Nest app:
 * DATABASE_URL if set; else the embedded database of a running kvchat (served on EMBEDDED_DB_PORT);
 * else the embedded data directory itself (only safe while no kvchat is running on it).
 * Pending migrations are applied, so a tool works on a fresh data directory. `entities`: ENTITIES (src/entities.ts).
 */
export async function openStandaloneDatabase(
  config: DatabaseConfig,
  entities: EntityList,
): Promise<{ orm: MikroORM; via: string; close(): Promise<void> }> {
  let url = config.DATABASE_URL;
  let via = 'DATABASE_URL';
  let closeEmbedded: (() => Promise<void>) | undefined;
  if (!url) {
    if (config.EMBEDDED_DB_PORT > 0 && (await isPortOpen(config.EMBEDDED_DB_PORT))) {
      url = `postgres://postgres@127.0.0.1:${config.EMBEDDED_DB_PORT}/postgres`;
      via = `the running service's embedded database (127.0.0.1:${config.EMBEDDED_DB_PORT})`;
    } else {
      const embedded = await startEmbeddedPostgres(config.DATA_DIR, 0);
      url = embedded.url;
      via = `the embedded database in ${embedded.dataDir}`;
      closeEmbedded = () => embedded.close();
    }
  }
  const options = buildOrmOptions(url, entities, { pool: { min: 0, max: 2 } });
  const orm = await MikroORM.init({ ...options, migrations: { ...options.migrations, silent: true } });
  await (await migratorOf(orm)).up();
  return {
    orm,
    via,
    close: async () => {
      await orm.close(true);
      await closeEmbedded?.();
    },
  };
}
