import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';

const run = promisify(execFile);
/** Key prefix of the kvchat under test in the lab's own Redis. */
const CHAOS_KEY_PREFIX = 'kvchat-chaos:';
/** PostgreSQL 15 server binaries (Debian layout). */
export const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** Next candidate of `BENCH_PORT_RANGE` (see freePort). */
let nextRangePort = 0;

/** Whether `port` can be bound on 127.0.0.1 right now. */
function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A free TCP port on 127.0.0.1: chosen by the kernel (bind 0, read it, close), or, when
 * `BENCH_PORT_RANGE=LOW-HIGH` is set (a machine shared by sessions that each own a range), the next
 * bindable port of that range, round robin. Throws when no port of the range is free.
 */
export async function freePort(): Promise<number> {
  const range = /^(\d+)-(\d+)$/.exec(process.env.BENCH_PORT_RANGE ?? '');
  if (range) {
    const low = Number(range[1]);
    const size = Number(range[2]) - low + 1;
    for (let tried = 0; tried < size; tried++) {
      const port = low + (nextRangePort++ % size);
      if (await canBind(port)) return port;
    }
    throw new Error(`no free port in BENCH_PORT_RANGE ${process.env.BENCH_PORT_RANGE}`);
  }
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` every 100 ms until it resolves true, or throws after `timeoutMs`. */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${what} was not ready within ${timeoutMs} ms`);
}

/** Resolves when `child` has exited (at once if it already has). */
function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

/**
 * The processes a chaos run breaks, all its own: a Redis and a PostgreSQL on free ports with their
 * data in a temp dir, the engine simulator and kvchat as child processes. Nothing here touches the
 * shared servers on the standard ports; `close()` stops exactly the processes it started (by pid).
 */
export class ChaosLab {
  readonly dir = mkdtempSync(join(tmpdir(), 'kvchat-chaos-'));
  redisPort = 0;
  pgPort = 0;
  simPort = 0;
  appPort = 0;
  apiKey = '';
  private redis?: ChildProcess;
  private sim?: ChildProcess;
  private app?: ChildProcess;
  private readonly pgData = join(this.dir, 'pg');

  constructor(private readonly distDir: string) {}

  get appUrl(): string {
    return `http://127.0.0.1:${this.appPort}`;
  }
  get simUrl(): string {
    return `http://127.0.0.1:${this.simPort}`;
  }
  get databaseUrl(): string {
    return `postgres://postgres@127.0.0.1:${this.pgPort}/postgres`;
  }

  /** Starts Redis, PostgreSQL (initdb first), the simulator and kvchat, and creates an API key. */
  async start(): Promise<void> {
    [this.redisPort, this.pgPort, this.simPort, this.appPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    await this.startRedis();
    await this.initPostgres();
    await this.startPostgres();
    await this.startSimulator();
    await this.startApp();
    const { stdout } = await run(
      process.execPath,
      [join(this.distDir, 'src/cli/keys.cli.js'), 'create', '--tenant', 'chaos'],
      {
        env: this.appEnv(),
      },
    );
    this.apiKey = stdout.trim().split('\n').at(-1) ?? '';
  }

  // --- Redis ---------------------------------------------------------------------------------
  async startRedis(): Promise<void> {
    this.redis = spawn(
      'redis-server',
      [
        '--port',
        String(this.redisPort),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.dir,
      ],
      { stdio: ['ignore', this.log('redis'), this.log('redis')] },
    );
    await waitFor('redis', async () =>
      (await run('redis-cli', ['-p', String(this.redisPort), 'ping'])).stdout.includes('PONG'),
    );
  }

  /** Turns kvchat records as running (InFlightTurns: the sorted set under its key prefix); -1 while Redis is down. */
  async inFlightTurns(): Promise<number> {
    try {
      const { stdout } = await run('redis-cli', [
        '-p',
        String(this.redisPort),
        'zcard',
        `${CHAOS_KEY_PREFIX}turns:in-flight`,
      ]);
      return Number(stdout.trim());
    } catch {
      return -1;
    }
  }

  /**
   * Turn locks held in the lab's Redis (`…lock:conversation:<id>`): conversation id → the holder's lock value
   * (Redlock's random token, new at every acquire, so a lock taken again by another turn is told apart).
   * Empty while Redis is down.
   */
  async turnLocks(): Promise<Map<string, string>> {
    const pattern = `${CHAOS_KEY_PREFIX}lock:conversation:`;
    const script =
      "local out = {} for _, k in ipairs(redis.call('keys', ARGV[1])) do " +
      "out[#out + 1] = k; out[#out + 1] = redis.call('get', k) or '' end return out";
    try {
      const { stdout } = await run('redis-cli', [
        '-p',
        String(this.redisPort),
        'eval',
        script,
        '0',
        `${pattern}*`,
      ]);
      const lines = stdout.split('\n').filter((l) => l.length > 0);
      const locks = new Map<string, string>();
      for (let i = 0; i + 1 < lines.length; i += 2) {
        if (lines[i].startsWith(pattern)) locks.set(lines[i].slice(pattern.length), lines[i + 1]);
      }
      return locks;
    } catch {
      return new Map();
    }
  }

  /** Stops Redis the way a crash or a failover does: the process is gone (its data too: no persistence). */
  async stopRedis(): Promise<void> {
    const redis = this.redis;
    redis?.kill('SIGKILL');
    if (redis) await exited(redis);
  }

  // --- PostgreSQL ----------------------------------------------------------------------------
  private async initPostgres(): Promise<void> {
    mkdirSync(this.pgData, { recursive: true });
    // initdb refuses to run as root: the data dir belongs to `postgres` when this process is root.
    if (process.getuid?.() === 0) await run('chown', ['-R', 'postgres:postgres', this.dir]);
    await this.asPostgres(join(PG_BIN, 'initdb'), [
      '-D',
      this.pgData,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
    ]);
  }

  async startPostgres(): Promise<void> {
    await this.asPostgres(join(PG_BIN, 'pg_ctl'), [
      '-D',
      this.pgData,
      '-l',
      join(this.dir, 'pg.log'),
      '-o',
      `-p ${this.pgPort} -k ${this.dir} -c listen_addresses=127.0.0.1`,
      '-w',
      'start',
    ]);
  }

  /** Stops PostgreSQL as a crash does (`pg_ctl stop -m immediate`: no checkpoint, connections cut). */
  async stopPostgres(): Promise<void> {
    await this.asPostgres(join(PG_BIN, 'pg_ctl'), ['-D', this.pgData, '-m', 'immediate', '-w', 'stop']);
  }

  /** Runs a PostgreSQL binary, as the `postgres` user when this process is root (initdb refuses root). */
  private asPostgres(bin: string, args: string[]): Promise<unknown> {
    return process.getuid?.() === 0 ? run('runuser', ['-u', 'postgres', '--', bin, ...args]) : run(bin, args);
  }

  /** Rows of a query as JSON, through psql. */
  async query<T>(sql: string): Promise<T[]> {
    const { stdout } = await run(
      'psql',
      [
        '-h',
        '127.0.0.1',
        '-p',
        String(this.pgPort),
        '-U',
        'postgres',
        '-d',
        'postgres',
        '-At',
        '-c',
        `select coalesce(json_agg(t), '[]') from (${sql}) t`,
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    return JSON.parse(stdout) as T[];
  }

  // --- the engine simulator ------------------------------------------------------------------
  async startSimulator(): Promise<void> {
    this.sim = spawn(
      process.execPath,
      [join(this.distDir, 'src/simulator/main.js'), '--port', String(this.simPort)],
      {
        stdio: ['ignore', this.log('simulator'), this.log('simulator')],
      },
    );
    await waitFor('simulator', async () => (await request(`${this.simUrl}/health`)).statusCode === 200);
  }

  /** Kills the simulator (SIGKILL: streams are cut mid-answer). */
  async killSimulator(): Promise<void> {
    const sim = this.sim;
    sim?.kill('SIGKILL');
    if (sim) await exited(sim);
  }

  /** Changes the simulator's faults (`stallMs`, `errorRate`, ...). */
  async simulatorFaults(patch: Record<string, unknown>): Promise<void> {
    const res = await request(`${this.simUrl}/sim/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(patch),
    });
    await res.body.dump();
  }

  // --- kvchat ----------------------------------------------------------------------------------
  private appEnv(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      NODE_ENV: 'production',
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      PORT: String(this.appPort),
      DATABASE_URL: this.databaseUrl,
      REDIS_URL: `redis://127.0.0.1:${this.redisPort}`,
      REDIS_KEY_PREFIX: CHAOS_KEY_PREFIX,
      // A turn runs at most 25 s (the stalled engine of sigterm-streams is aborted by the 20 s drain
      // first); the sweeper looks every 2 s, so a SIGKILLed turn is stored within a scenario's audit.
      TURN_DEADLINE_MS: '25000',
      TURN_SWEEP_INTERVAL_SECONDS: '2',
      INFERENCE_ENDPOINTS: `${this.simUrl}/v1`,
      DATA_DIR: join(this.dir, 'data'),
      SERVER_SECRET: 'chaos-benchmark-server-secret',
      API_KEY_CACHE_SECONDS: '60',
    };
  }

  async startApp(): Promise<void> {
    this.app = spawn(process.execPath, [join(this.distDir, 'src/main.js')], {
      env: this.appEnv(),
      stdio: ['ignore', this.log('app'), this.log('app')],
    });
    await waitFor(
      'kvchat',
      async () => (await request(`${this.appUrl}/health/live`)).statusCode === 200,
      120_000,
    );
  }

  /**
   * Sends `signal` to kvchat and waits for it to exit, at most `graceMs` (then SIGKILL, as an
   * orchestrator does at the end of its grace period). @returns ms until it exited
   */
  async stopApp(signal: NodeJS.Signals, graceMs = 30_000): Promise<{ exitedMs: number; killed: boolean }> {
    const app = this.app;
    if (!app) return { exitedMs: 0, killed: false };
    const started = Date.now();
    app.kill(signal);
    const inTime = await Promise.race([exited(app).then(() => true), sleep(graceMs).then(() => false)]);
    if (!inTime) {
      app.kill('SIGKILL');
      await exited(app);
    }
    return { exitedMs: Date.now() - started, killed: !inTime };
  }

  /** Stops everything this lab started and removes its temp dir. */
  async close(): Promise<void> {
    for (const child of [this.app, this.sim, this.redis]) {
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited(child);
      }
    }
    await this.stopPostgres().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A file descriptor appending to `<dir>/<name>.log` (kept for reading after a failed run). */
  private log(name: string): number {
    return openSync(join(this.dir, `${name}.log`), 'a');
  }
}
