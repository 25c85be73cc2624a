import { Migrator } from '@mikro-orm/migrations';
import type { Options } from '@mikro-orm/core';
import { defineConfig, type PostgreSqlDriver } from '@mikro-orm/postgresql';
import { MIGRATIONS } from './migrations.list';

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
    extensions: [Migrator],
    migrations: {
      tableName: 'mikro_orm_migrations',
      // New migrations are written as TypeScript into the source tree and listed in migrations.list.ts.
      path: 'src/database/migrations',
      pathTs: 'src/database/migrations',
      emit: 'ts',
      migrationsList: MIGRATIONS,
      transactional: true,
      allOrNothing: true,
      snapshot: false,
      silent: true,
    },
    // Entities are mapped to DTOs explicitly; the ORM must never be serialised.
    forceUtcTimezone: true,
    pool: { min: 0, max: 20 },
    ...overrides,
  });
}
