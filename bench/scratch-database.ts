import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A database a benchmark created on the local PostgreSQL server, for its own run. */
export interface ScratchDatabase {
  /** `postgres://postgres@127.0.0.1:5432/<name>`. */
  url: string;
  /** Drops it (`dropdb --if-exists`); a failure is written to stderr, never thrown. */
  drop(): Promise<void>;
}

/**
 * Creates `<prefix>_<pid>` on the local server (postgres@127.0.0.1:5432, trust auth) with `createdb`.
 * @throws the `createdb` error (server down, database exists)
 */
export async function createScratchDatabase(prefix: string): Promise<ScratchDatabase> {
  const name = `${prefix}_${process.pid}`;
  await run('createdb', ['-h', '127.0.0.1', '-U', 'postgres', name]);
  return {
    url: `postgres://postgres@127.0.0.1:5432/${name}`,
    drop: () =>
      run('dropdb', ['-h', '127.0.0.1', '-U', 'postgres', '--if-exists', name]).then(
        () => undefined,
        (e: unknown) => void process.stderr.write(`dropdb: ${String(e)}\n`),
      ),
  };
}
