import type { EmbeddedPostgres } from '../../src/database/embedded-postgres';
import { WORKER_DATABASES } from './global-setup';

/** Closes the databases global-setup.ts started. */
export default async function globalTeardown(): Promise<void> {
  const started = (globalThis as Record<symbol, unknown>)[WORKER_DATABASES] as EmbeddedPostgres[] | undefined;
  await Promise.all((started ?? []).map((db) => db.close()));
}
