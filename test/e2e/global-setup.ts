import { MikroORM } from '@mikro-orm/postgresql';
import type { Config } from '@jest/types';
import { type EmbeddedPostgres, startEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { buildOrmOptions, migratorOf } from '../../src/database/mikro-orm.options';
import { workerDatabaseVariable } from '../factories/worker-database';

/** The databases this run started; global-teardown.ts closes them (jest keeps globals between the two). */
export const WORKER_DATABASES = Symbol.for('kvchat.e2e.workerDatabases');

/**
 * Starts one database per jest worker (PGlite with pgvector, as the app embeds it, served on a loopback
 * port) and applies the committed migrations once, so that the e2e suites boot their apps against a
 * migrated database instead of initialising and migrating a PGlite per app.
 */
export default async function globalSetup(globalConfig: Config.GlobalConfig): Promise<void> {
  const workers = globalConfig.maxWorkers;
  const started: EmbeddedPostgres[] = [];
  for (let worker = 1; worker <= workers; worker++) {
    const db = await startEmbeddedPostgres('memory://', 0);
    started.push(db);
    // Migrations are SQL and need no entity metadata. Entities are not loaded here: jest runs this
    // outside the suites' module registry, and MikroORM's metadata must come from the suites' own copy.
    const orm = await MikroORM.init(
      buildOrmOptions(db.url, [], { pool: { min: 0, max: 1 }, discovery: { warnWhenNoEntities: false } }),
    );
    try {
      await (await migratorOf(orm)).up();
    } finally {
      await orm.close(true);
    }
    process.env[workerDatabaseVariable(worker)] = db.url;
  }
  (globalThis as Record<symbol, unknown>)[WORKER_DATABASES] = started;
  // MikroORM keeps its decorator metadata on globalThis (`mikro-orm-*`). jest-environment-node copies
  // this process's globals into every suite's context, so a storage made here would be shared by all
  // suites and mix their entity classes: drop it (nothing here needs it once the ORM is closed).
  for (const key of Object.getOwnPropertyNames(globalThis)) {
    if (key.startsWith('mikro-orm-')) delete (globalThis as Record<string, unknown>)[key];
  }
}
