import 'reflect-metadata';
import { MikroORM } from '@mikro-orm/postgresql';
import { Command } from 'commander';
import { loadConfigClass } from './config/config.loader';
import { loadDotEnv } from './config/config.module';
import { DatabaseConfig } from './config/database.config';
import { openStandaloneDatabase } from './database/standalone';
import { buildOrmOptions, migratorOf } from './database/mikro-orm.options';
import { ENTITIES } from './entities';

/** What `migrate` did. */
export interface MigrateResult {
  /** Migrations applied by this run, in order (empty when the schema was current). */
  applied: string[];
  /** Migrations still pending (only with `check`, which applies nothing). */
  pending: string[];
}

/**
 * `npm run migrate` (in the image: `node dist/src/migrate.js`): applies pending migrations to
 * DATABASE_URL and exits; the one-shot step that runs before api and worker processes start with
 * DB_MIGRATE_ON_BOOT=false (the Helm chart's pre-install/pre-upgrade Job, compose's `migrate`).
 * Migrations are transactional and all-or-nothing. Without DATABASE_URL it migrates the embedded
 * database (the running service's, else the data directory). `--check` applies nothing and exits 1
 * when migrations are pending.
 * @throws Error from the driver when the database is unreachable or a migration fails (nothing applied)
 */
export async function migrate(
  env: Record<string, string | undefined>,
  options: { check?: boolean } = {},
  log: (line: string) => void = () => undefined,
): Promise<MigrateResult> {
  const database = loadConfigClass(DatabaseConfig, env);
  if (!database.DATABASE_URL) {
    // The embedded database: openStandaloneDatabase applies pending migrations as it opens.
    const db = await openStandaloneDatabase(database, ENTITIES);
    await db.close();
    log(`migrated ${db.via}`);
    return { applied: [], pending: [] };
  }
  const orm = await MikroORM.init(
    buildOrmOptions(database.DATABASE_URL, ENTITIES, { pool: { min: 0, max: 1 } }),
  );
  try {
    const migrator = await migratorOf(orm);
    if (options.check) {
      const pending = (await migrator.getPendingMigrations()).map((m) => m.name);
      log(pending.length === 0 ? 'schema is current' : `pending migrations: ${pending.join(', ')}`);
      return { applied: [], pending };
    }
    const applied = (await migrator.up()).map((m) => m.name);
    log(applied.length === 0 ? 'schema is current' : `applied migrations: ${applied.join(', ')}`);
    return { applied, pending: [] };
  } finally {
    await orm.close(true);
  }
}

if (require.main === module) {
  loadDotEnv();
  const program = new Command('migrate')
    .description('apply pending database migrations (DATABASE_URL) and exit')
    .option('--check', 'apply nothing; exit 1 when migrations are pending', false)
    .parse(process.argv);
  const { check } = program.opts<{ check: boolean }>();
  migrate(process.env, { check }, (line) => process.stdout.write(`${line}\n`)).then(
    (result) => process.exit(result.pending.length > 0 ? 1 : 0),
    (e: unknown) => {
      process.stderr.write(`migrate failed: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
