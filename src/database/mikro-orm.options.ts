import type { IMigrator, MikroORM, Options } from '@mikro-orm/core';
import { defineConfig, type PostgreSqlDriver } from '@mikro-orm/postgresql';

/** The entity classes the ORM maps; the composition root lists them (src/entities.ts). */
export type EntityList = NonNullable<Options<PostgreSqlDriver>['entities']>;

/**
 * MikroORM options shared by the app, the CLI and the tests.
 * @param clientUrl PostgreSQL URL (an external server, or the embedded PGlite's socket)
 * @param entities every entity of the schema (`ENTITIES` from src/entities.ts): the database layer
 *   does not import the modules that own them
 */
export function buildOrmOptions(
  clientUrl: string,
  entities: EntityList,
  overrides: Partial<Options<PostgreSqlDriver>> = {},
): Options<PostgreSqlDriver> {
  return defineConfig({
    clientUrl,
    entities,
    discovery: { warnWhenNoEntities: true },
    // The migrator and the migration list are added on first use (migratorOf).
    migrations: {
      tableName: 'mikro_orm_migrations',
      // New migrations are written as TypeScript into the source tree and listed in migrations.list.ts.
      path: 'src/database/migrations',
      pathTs: 'src/database/migrations',
      emit: 'ts',
      transactional: true,
      allOrNothing: true,
      snapshot: false,
      silent: true,
    },
    // Entities are mapped to DTOs explicitly; the ORM must never be serialised.
    forceUtcTimezone: true,
    ...overrides,
    pool: { min: 0, max: 20, ...overrides.pool, afterCreate: iterativeVectorScans },
  });
}

/**
 * The ORM's migrator, over the migrations listed in migrations.list.ts. `@mikro-orm/migrations` (with
 * umzug and its command-line parser, ~290 modules) loads here, on first use, not with the ORM options:
 * a process that does not migrate (DB_MIGRATE_ON_BOOT=false: replicas behind a `migrate` job, test apps
 * on a migrated database) never loads it. Use this instead of `orm.getMigrator()`, which without it
 * would look for migration files on disk.
 */
export async function migratorOf(orm: MikroORM): Promise<IMigrator> {
  const [{ Migrator }, { MIGRATIONS }] = await Promise.all([
    import('@mikro-orm/migrations'),
    import('./migrations.list'),
  ]);
  if (!orm.config.getExtension('@mikro-orm/migrator')) {
    orm.config.set('migrations', { ...orm.config.get('migrations'), migrationsList: MIGRATIONS });
    Migrator.register(orm);
  }
  return orm.getMigrator();
}

/** A pooled `pg` client, as knex hands it to `afterCreate`. */
interface PooledClient {
  query(sql: string, callback: (error: unknown) => void): void;
}

/**
 * Every pooled session scans HNSW indexes iteratively (pgvector >= 0.8, `hnsw.iterative_scan`, see the
 * pgvector README "Iterative index scans"): a nearest-neighbour search filtered by tenant and namespace keeps
 * going until it has k rows instead of stopping at `ef_search` candidates. Set once per session, so a search
 * is one statement rather than a transaction around `SET LOCAL`. Before pgvector is loaded the name is a
 * placeholder that the extension adopts when it loads; an error (an older pgvector that reserves the
 * `hnsw.` prefix) is ignored: searches then run without it, as pgvector < 0.8 always does.
 */
function iterativeVectorScans(
  client: PooledClient,
  done: (error: unknown, client: PooledClient) => void,
): void {
  client.query(`select set_config('hnsw.iterative_scan', 'relaxed_order', false)`, () => done(null, client));
}
