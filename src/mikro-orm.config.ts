import { loadConfigClass } from './config/config.loader';
import { loadDotEnv } from './config/config.module';
import { DatabaseConfig } from './config/database.config';
import { Migrator } from '@mikro-orm/migrations';
import { buildOrmOptions } from './database/mikro-orm.options';
import { MIGRATIONS } from './database/migrations.list';
import { ENTITIES } from './entities';

/**
 * Configuration for the MikroORM CLI (`npx mikro-orm migration:create|up|list`, after `npm run build`).
 * Uses DATABASE_URL, or the embedded database served by a running kvchat on EMBEDDED_DB_PORT.
 */
loadDotEnv();
const database = loadConfigClass(DatabaseConfig, process.env);
const url = database.DATABASE_URL ?? `postgres://postgres@127.0.0.1:${database.EMBEDDED_DB_PORT}/postgres`;

const options = buildOrmOptions(url, ENTITIES);
// The CLI uses the migrator directly (the app and tools load it on first use: migratorOf).
export default {
  ...options,
  extensions: [Migrator],
  migrations: { ...options.migrations, migrationsList: MIGRATIONS },
};
