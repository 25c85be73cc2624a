/**
 * One migrated database per jest worker for the e2e tier: test/e2e/global-setup.ts starts it once
 * (PGlite + pgvector, served over the wire) and names it in the environment; every app a suite boots
 * connects to it instead of booting and migrating an in-memory PGlite of its own. Suites keep to their
 * own tenants (every app gets fresh ones), so they do not see each other's rows.
 */
export const WORKER_DATABASE_ENV = 'KVCHAT_TEST_DATABASE_URL';

/** The environment variable holding worker `worker`'s database URL. */
export function workerDatabaseVariable(worker: number | string): string {
  return `${WORKER_DATABASE_ENV}_${worker}`;
}

/** This jest worker's database URL, or undefined outside the e2e tier (the app then boots its own PGlite). */
export function workerDatabaseUrl(): string | undefined {
  return process.env[workerDatabaseVariable(process.env.JEST_WORKER_ID ?? '1')];
}
