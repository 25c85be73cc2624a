import { randomUUID } from 'node:crypto';
import { startEngineSimulator, type RunningSimulator } from '../../src/simulator/simulator.server';
import { type SimulatorOptionsInput } from '../../src/simulator/simulator.options';
import { createScratchDatabase, type ScratchDatabase } from './postgres';
import { type Build, buildApp, childEnv, type KvchatProcess, runNode, startKvchat } from './processes';
import { deleteRedisPrefix } from './redis';

/** Result of a compiled CLI run to its end (as `runNode` returns it). */
export interface CliResult {
  /** Exit code; -1 when the process ended without one (killed by a signal). */
  code: number;
  stdout: string;
  stderr: string;
}

/** What `setUpProcessFixture` starts for a suite that runs kvchat as separate OS processes. */
export interface ProcessFixture {
  /** The app compiled into a temporary directory (removed by `close`). */
  build: Build;
  /** An empty scratch database on the local PostgreSQL (dropped by `close`); not migrated. */
  db: ScratchDatabase;
  /** The engine simulator, in this process (closed by `close`). */
  sim: RunningSimulator;
  /** The fresh Redis key prefix of this fixture, `kvchat-test-<uuid>:` (its keys are deleted by `close`). */
  prefix: string;
  /** The environment of every child process: `childEnv` with the common settings, then the suite's. */
  env: NodeJS.ProcessEnv;
  /** Every kvchat process `start` started, in order (stopped by `close`). */
  started: KvchatProcess[];
  /**
   * Starts a kvchat process from the build with `env` plus `extra` (see `startKvchat`) and records it in
   * `started`.
   * @throws Error with its output when it exits or does not start in time (`startKvchat`)
   */
  start(extra?: Record<string, string>): Promise<KvchatProcess>;
  /**
   * Runs `migrate` from the build (`src/migrate.js` with `args`, e.g. `['--check']`) to its end. Never
   * throws on a failing exit: the code is in the result.
   */
  migrate(args?: string[]): Promise<CliResult>;
  /**
   * Creates an API key with the keys CLI (`keys create --tenant <tenant> [--name <name>]`).
   * @returns the CLI result, plus `key`: the last line of its stdout, where the CLI prints the plaintext
   *   key (meaningless when `code` is not 0). Never throws on a failing exit.
   */
  createKey(tenant: string, name?: string): Promise<CliResult & { key: string }>;
  /**
   * Tears everything down: stops the started processes (`'SIGTERM'`: each process's `stop()`, which waits
   * for its drain; `'SIGKILL'`: kills those still running and waits for their exit), then closes the
   * simulator, drops the database, deletes the Redis prefix and removes the build.
   */
  close(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
}

/** Options of `setUpProcessFixture`. */
export interface ProcessFixtureOptions {
  /** Options of the engine simulator (e.g. `{ timing: { timeScale: 0 }, replyTokens: { min: 8, max: 16 } }`). */
  simulator?: SimulatorOptionsInput;
  /**
   * The suite's own environment settings, given the running simulator (e.g. to read its models); they
   * override the common ones: DATABASE_URL, REDIS_KEY_PREFIX, INFERENCE_ENDPOINTS, a random SERVER_SECRET,
   * NODE_ENV=test, RESPONSE_CACHE_ENABLED=false.
   */
  env?: (sim: RunningSimulator) => Record<string, string> | Promise<Record<string, string>>;
}

/**
 * The common set-up of the process-based suites: compiles the app (`buildApp`), creates a scratch
 * database and starts the engine simulator, concurrently, and builds the child environment on the
 * local Redis under a fresh prefix. Nothing is migrated and no process is started yet.
 * @returns the fixture; call `close()` in `afterAll`
 * @throws whatever the build, the database creation or the simulator start throws, after closing what
 *   did start
 */
export async function setUpProcessFixture(options: ProcessFixtureOptions = {}): Promise<ProcessFixture> {
  const prefix = `kvchat-test-${randomUUID()}:`;
  const [builtR, dbR, simR] = await Promise.allSettled([
    buildApp(),
    createScratchDatabase(),
    startEngineSimulator(options.simulator),
  ]);
  if (builtR.status === 'rejected' || dbR.status === 'rejected' || simR.status === 'rejected') {
    if (simR.status === 'fulfilled') await simR.value.close();
    if (dbR.status === 'fulfilled') await dbR.value.drop();
    if (builtR.status === 'fulfilled') await builtR.value.remove();
    throw [builtR, dbR, simR].flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []))[0];
  }
  const build = builtR.value;
  const db = dbR.value;
  const sim = simR.value;
  const started: KvchatProcess[] = [];
  let env: NodeJS.ProcessEnv;
  try {
    env = childEnv({
      DATABASE_URL: db.url,
      REDIS_KEY_PREFIX: prefix,
      INFERENCE_ENDPOINTS: sim.baseURL,
      SERVER_SECRET: randomUUID(),
      NODE_ENV: 'test',
      RESPONSE_CACHE_ENABLED: 'false',
      ...(await options.env?.(sim)),
    });
  } catch (e) {
    await sim.close();
    await db.drop();
    await build.remove();
    throw e;
  }
  return {
    build,
    db,
    sim,
    prefix,
    env,
    started,
    start: async (extra = {}) => {
      const p = await startKvchat(build, { ...env, ...extra });
      started.push(p);
      return p;
    },
    migrate: (args = []) => runNode(build.entry('src/migrate.js'), args, env, build.dir),
    createKey: async (tenant, name) => {
      const args = ['create', '--tenant', tenant, ...(name === undefined ? [] : ['--name', name])];
      const result = await runNode(build.entry('src/cli/keys.cli.js'), args, env, build.dir);
      return { ...result, key: result.stdout.trim().split('\n').pop()! };
    },
    close: async (signal = 'SIGTERM') => {
      if (signal === 'SIGKILL') {
        for (const p of started)
          if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
        await Promise.all(started.map((p) => p.exited));
      } else {
        await Promise.all(started.map((p) => p.stop()));
      }
      await sim.close();
      await db.drop();
      await deleteRedisPrefix(prefix);
      await build.remove();
    },
  };
}
