import { randomBytes } from 'node:crypto';
import { MikroORM } from '@mikro-orm/postgresql';
import { buildOrmOptions } from '../../src/database/mikro-orm.options';
import { ENTITIES } from '../../src/entities';

/** The local PostgreSQL server (trust auth), as CI and every developer machine has it. */
export const LOCAL_POSTGRES = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A throwaway database on the local PostgreSQL server. */
export interface ScratchDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** Creates an empty database with a random name; `drop()` removes it. */
export async function createScratchDatabase(): Promise<ScratchDatabase> {
  const name = `kvchat_test_${randomBytes(6).toString('hex')}`;
  const admin = await MikroORM.init(
    buildOrmOptions(LOCAL_POSTGRES, ENTITIES, {
      pool: { min: 0, max: 1 },
      discovery: { warnWhenNoEntities: false },
    }),
  );
  await admin.em.getConnection().execute(`create database "${name}"`);
  await admin.close(true);
  const url = LOCAL_POSTGRES.replace(/\/[^/]*$/, `/${name}`);
  return {
    url,
    name,
    drop: async () => {
      const orm = await MikroORM.init(
        buildOrmOptions(LOCAL_POSTGRES, ENTITIES, { pool: { min: 0, max: 1 } }),
      );
      await orm.em.getConnection().execute(`drop database if exists "${name}" with (force)`);
      await orm.close(true);
    },
  };
}
