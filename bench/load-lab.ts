import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { parsePrometheusText } from '../src/inference/prometheus-text';
import { freePort, sleep, waitFor } from './chaos-lab';
import { renderNginxConfig } from './nginx-config';
import { createScratchDatabase, type ScratchDatabase } from './scratch-database';

const run = promisify(execFile);

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`; 100 on Linux x86-64 and arm64). */
let clockTicks = 100;
void run('getconf', ['CLK_TCK'])
  .then(({ stdout }) => {
    const n = Number(stdout.trim());
    if (Number.isInteger(n) && n > 0) clockTicks = n;
  })
  .catch(() => undefined);

/** CPU time (user + system) and resident set of a process, from /proc/<pid>/stat (proc(5)). */
export interface ProcSample {
  cpuMs: number;
  /** CPU time of the main thread alone (the event loop), /proc/<pid>/task/<pid>/stat, ms. */
  mainThreadCpuMs: number;
  rssMb: number;
}

/**
 * The command name, utime + stime (ms) and rss (MB) of a /proc stat file: fields 2, 14, 15 and 24.
 * @throws when unreadable
 */
function readStatFile(path: string): { command: string; cpuMs: number; rssMb: number } {
  const text = readFileSync(path, 'utf8');
  // The command name (field 2) is in parentheses and may contain spaces: split after its closing one.
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const rssPages = Number(fields[21]);
  return {
    command: text.slice(text.indexOf('(') + 1, close),
    cpuMs: ((utime + stime) * 1000) / clockTicks,
    rssMb: (rssPages * 4096) / 1048576,
  };
}

/**
 * Reads /proc/<pid>/stat (every thread) and /proc/<pid>/task/<pid>/stat (the main thread: the event loop,
 * apart from worker threads such as the local sentence model's). @returns null when the process is gone
 */
export function readProcStat(pid: number): ProcSample | null {
  try {
    const all = readStatFile(`/proc/${pid}/stat`);
    const main = readStatFile(`/proc/${pid}/task/${pid}/stat`);
    return { cpuMs: all.cpuMs, mainThreadCpuMs: main.cpuMs, rssMb: all.rssMb };
  } catch {
    return null;
  }
}

/** The whole machine's CPU time and every process's, at one moment (/proc/stat, /proc/<pid>/stat). */
export interface MachineSample {
  /** All cores' non-idle time (user, nice, system, irq, softirq, steal), ms. */
  busyMs: number;
  /** All cores' idle and iowait time, ms. */
  idleMs: number;
  /** Each process's command name (/proc/<pid>/stat field 2) and CPU time (all its threads), ms. */
  processes: Map<number, { command: string; cpuMs: number }>;
}

/** Reads the machine's CPU times and every process's (proc(5)); processes that vanish meanwhile are skipped. */
export function readMachine(): MachineSample {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = cpu;
  const toMs = (ticks: number): number => (ticks * 1000) / clockTicks;
  const processes = new Map<number, { command: string; cpuMs: number }>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const { command, cpuMs } = readStatFile(`/proc/${pid}/stat`);
      processes.set(pid, { command, cpuMs });
    } catch {
      // exited between readdir and read
    }
  }
  return {
    busyMs: toMs(user + nice + system + irq + softirq + (steal ?? 0)),
    idleMs: toMs(idle + (iowait ?? 0)),
    processes,
  };
}

/**
 * Where the machine's CPU went between two samples: each of `named` pids under its name, every other
 * process under its command name (postgres, redis-server, nginx...), ms. A process that started in the
 * window counts whole; one that ended in it is missing (its time shows only in `busyMs`).
 */
export function machineWindow(
  before: MachineSample,
  after: MachineSample,
  named: ReadonlyMap<number, string>,
): { busyMs: number; idleMs: number; byName: Record<string, number> } {
  const byName: Record<string, number> = {};
  for (const [pid, now] of after.processes) {
    const was = before.processes.get(pid);
    const delta = now.cpuMs - (was && was.command === now.command ? was.cpuMs : 0);
    if (delta <= 0) continue;
    const name = named.get(pid) ?? now.command;
    byName[name] = (byName[name] ?? 0) + delta;
  }
  return { busyMs: after.busyMs - before.busyMs, idleMs: after.idleMs - before.idleMs, byName };
}

/** A process the lab started (or was given), with what the report needs about it. */
export interface LabProcess {
  name: string;
  role: 'api' | 'worker' | 'simulator' | 'gateway' | 'proxy';
  url: string;
  pid?: number;
  child?: ChildProcess;
  /** Highest RSS seen by the sampler, MB. */
  rssMbMax: number;
}

/** Where the lab's processes find PostgreSQL, Redis and each other. */
export interface LabOptions {
  /** dist/ of `npm run build`. */
  distDir: string;
  /** External PostgreSQL; unset = a fresh database `kvchat_load_<pid>` on the local server, dropped at close. */
  databaseUrl?: string;
  /** The shared Redis (a fresh key prefix is used and its keys removed at close). */
  redisUrl: string;
  apiProcesses: number;
  /** Extra environment of the api processes (limits, cache switches). */
  apiEnv: Record<string, string>;
  /** Flags of `node --cpu-prof` etc. for the first api process. */
  firstApiNodeFlags?: string[];
  /** Turn/chat answers the simulator streams are `max_tokens` long; `--time-scale` of its sleeps. */
  simulatorArgs: string[];
  /** Start a Portkey gateway from this install directory (node_modules/@portkey-ai/gateway). */
  portkeyDir?: string;
  /**
   * Put nginx (this binary) in front of the api processes, configured by the repository's
   * docker/nginx.conf with its upstream pointed at them; clients then talk to nginx only.
   */
  nginxBinary?: string;
}

/**
 * The processes of one load run: the engine simulator, one worker and K api processes of kvchat
 * (`KVCHAT_ROLE`, docs/deploy.md) on the external PostgreSQL and the shared Redis under a fresh key
 * prefix, optionally Portkey's gateway; an API key; a sampler of CPU and RSS from /proc. `close()`
 * stops exactly the processes it started (by pid), removes its Redis keys and drops the database it created.
 */
export class LoadLab {
  readonly dir = mkdtempSync(join(tmpdir(), 'kvchat-load-'));
  readonly processes: LabProcess[] = [];
  readonly metricsToken = randomBytes(18).toString('hex');
  readonly keyPrefix = `kvchat-load-${process.pid}-${Date.now()}:`;
  databaseUrl = '';
  simUrl = '';
  apiKey = '';
  private scratchDatabase?: ScratchDatabase;
  private sampler?: NodeJS.Timeout;

  constructor(private readonly options: LabOptions) {}

  get apis(): LabProcess[] {
    return this.processes.filter((p) => p.role === 'api');
  }

  get gateway(): LabProcess | undefined {
    return this.processes.find((p) => p.role === 'gateway');
  }

  /** The nginx in front of the api processes (`nginxBinary`), if any. */
  get proxy(): LabProcess | undefined {
    return this.processes.find((p) => p.role === 'proxy');
  }

  /** Where clients send their requests: the proxy when there is one, else each api process. */
  get entrypoints(): LabProcess[] {
    const proxy = this.proxy;
    return proxy ? [proxy] : this.apis;
  }

  async start(): Promise<void> {
    await this.prepareDatabase();
    await this.startSimulator();
    const env = this.kvchatEnv({});
    // Migrations once, before any process boots (processes then skip them: no race between K api processes).
    await run(process.execPath, [join(this.options.distDir, 'src/migrate.js')], { env });
    const { stdout } = await run(
      process.execPath,
      [join(this.options.distDir, 'src/cli/keys.cli.js'), 'create', '--tenant', `load-${process.pid}`],
      { env },
    );
    this.apiKey = stdout.trim().split('\n').at(-1) ?? '';
    const starts = [this.startKvchat('worker', 'worker', {})];
    for (let i = 0; i < this.options.apiProcesses; i++)
      starts.push(
        this.startKvchat(
          `api-${i + 1}`,
          'api',
          this.options.apiEnv,
          i === 0 ? this.options.firstApiNodeFlags : [],
        ),
      );
    await Promise.all(starts);
    if (this.options.portkeyDir) await this.startPortkey(this.options.portkeyDir);
    if (this.options.nginxBinary) await this.startNginx(this.options.nginxBinary);
    this.sampler = setInterval(() => this.sample(), 500);
    this.sampler.unref();
  }

  /** CPU ms and RSS MB of every process that has a pid, by name. */
  snapshot(): Record<string, ProcSample> {
    const out: Record<string, ProcSample> = {};
    for (const p of this.processes) {
      const s = p.pid ? readProcStat(p.pid) : null;
      if (s) out[p.name] = s;
    }
    return out;
  }

  /** Samples of one process's /metrics (the lab's bearer token). */
  async scrape(p: LabProcess): Promise<ReturnType<typeof parsePrometheusText>> {
    const res = await request(`${p.url}/metrics`, {
      headers: { authorization: `Bearer ${this.metricsToken}` },
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    const text = await res.body.text();
    return res.statusCode === 200 ? parsePrometheusText(text) : [];
  }

  /** Rows of a query as JSON objects, through psql on the run's database. */
  async query<T>(sql: string): Promise<T[]> {
    const { stdout } = await run(
      'psql',
      [this.databaseUrl, '-At', '-c', `select coalesce(json_agg(t), '[]') from (${sql}) t`],
      { maxBuffer: 256 * 1024 * 1024 },
    );
    return JSON.parse(stdout) as T[];
  }

  /** Stops what it started (SIGTERM, SIGKILL after 10 s), removes the Redis keys and the database it created. */
  async close(): Promise<void> {
    clearInterval(this.sampler);
    await Promise.all(
      this.processes.map(async (p) => {
        const child = p.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        if (!(await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]))) {
          child.kill('SIGKILL');
          await exited;
        }
      }),
    );
    await this.removeRedisKeys().catch((e: unknown) => process.stderr.write(`redis cleanup: ${String(e)}\n`));
    await this.scratchDatabase?.drop().catch((e: unknown) => process.stderr.write(`dropdb: ${String(e)}\n`));
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The log file of a process, for a failed run. */
  logPath(name: string): string {
    return join(this.dir, `${name}.log`);
  }

  // ---------------------------------------------------------------------------------------------
  private async prepareDatabase(): Promise<void> {
    if (this.options.databaseUrl) {
      this.databaseUrl = this.options.databaseUrl;
      return;
    }
    this.scratchDatabase = await createScratchDatabase(`kvchat_load_${process.pid}`);
    this.databaseUrl = this.scratchDatabase.url;
  }

  private kvchatEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
    return {
      ...process.env,
      NODE_ENV: 'production',
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      DATABASE_URL: this.databaseUrl,
      DB_MIGRATE_ON_BOOT: 'false',
      REDIS_URL: this.options.redisUrl,
      REDIS_KEY_PREFIX: this.keyPrefix,
      INFERENCE_ENDPOINTS: `${this.simUrl}/v1`,
      DATA_DIR: join(this.dir, 'data'),
      SERVER_SECRET: 'load-benchmark-server-secret',
      API_KEY_CACHE_SECONDS: '300',
      METRICS_ENABLED: 'true',
      METRICS_BEARER_TOKEN: this.metricsToken,
      ...extra,
    };
  }

  private async startSimulator(): Promise<void> {
    const port = await freePort();
    this.simUrl = `http://127.0.0.1:${port}`;
    const child = spawn(
      process.execPath,
      [
        join(this.options.distDir, 'src/simulator/main.js'),
        '--port',
        String(port),
        ...this.options.simulatorArgs,
      ],
      { stdio: ['ignore', this.log('simulator'), this.log('simulator')] },
    );
    this.processes.push({
      name: 'simulator',
      role: 'simulator',
      url: this.simUrl,
      pid: child.pid,
      child,
      rssMbMax: 0,
    });
    await waitFor('simulator', async () => (await request(`${this.simUrl}/health`)).statusCode === 200);
  }

  private async startKvchat(
    name: string,
    role: 'api' | 'worker',
    extra: Record<string, string>,
    nodeFlags: string[] = [],
  ): Promise<void> {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(process.execPath, [...nodeFlags, join(this.options.distDir, 'src/main.js')], {
      env: this.kvchatEnv({ ...extra, KVCHAT_ROLE: role, PORT: String(port) }),
      cwd: this.dir,
      stdio: ['ignore', this.log(name), this.log(name)],
    });
    this.processes.push({ name, role, url, pid: child.pid, child, rssMbMax: 0 });
    await waitFor(
      `${name} (log: ${this.logPath(name)})`,
      async () => {
        if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
        return (await request(`${url}/health/live`)).statusCode === 200;
      },
      180_000,
    );
  }

  /** Portkey's open-source gateway (`build/start-server.js`, Node server) on a free port. */
  private async startPortkey(dir: string): Promise<void> {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(
      process.execPath,
      [join(dir, 'node_modules/@portkey-ai/gateway/build/start-server.js'), `--port=${port}`, '--headless'],
      {
        cwd: dir,
        env: { ...process.env, NODE_ENV: 'production' },
        stdio: ['ignore', this.log('portkey'), this.log('portkey')],
      },
    );
    this.processes.push({ name: 'portkey', role: 'gateway', url, pid: child.pid, child, rssMbMax: 0 });
    await waitFor('portkey gateway', async () => (await request(`${url}/`)).statusCode < 500, 60_000);
  }

  /**
   * nginx as deployed by docker/compose.yaml: the repository's docker/nginx.conf, with its upstream's one
   * `server api:3000 …;` line repeated for each api process (same parameters: max_conns) and its
   * `listen` on a free loopback port; no access log. One process (`master_process off`), so its pid is
   * the one that does the work.
   */
  private async startNginx(binary: string): Promise<void> {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const dir = join(this.dir, 'nginx');
    mkdirSync(join(dir, 'logs'), { recursive: true });
    const template = readFileSync(resolve(this.options.distDir, '../docker/nginx.conf'), 'utf8');
    const config = renderNginxConfig(
      template,
      this.apis.map((a) => new URL(a.url).host),
      port,
    );
    writeFileSync(join(dir, 'nginx.conf'), config);
    const child = spawn(
      binary,
      ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off; master_process off;'],
      { stdio: ['ignore', this.log('nginx'), this.log('nginx')] },
    );
    this.processes.push({ name: 'nginx', role: 'proxy', url, pid: child.pid, child, rssMbMax: 0 });
    await waitFor(`nginx (log: ${this.logPath('nginx')})`, async () => {
      if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}`);
      return (await request(`${url}/health/live`)).statusCode === 200;
    });
  }

  private sample(): void {
    for (const p of this.processes) {
      const s = p.pid ? readProcStat(p.pid) : null;
      if (s && s.rssMb > p.rssMbMax) p.rssMbMax = s.rssMb;
    }
  }

  private async removeRedisKeys(): Promise<void> {
    const { default: Redis } = await import('ioredis');
    const redis = new Redis(this.options.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${this.keyPrefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await redis.unlink(...keys);
      } while (cursor !== '0');
      // Bull's queues use their own prefix under the key prefix; the pattern above covers them.
    } finally {
      redis.disconnect();
    }
  }

  private log(name: string): number {
    return openSync(this.logPath(name), 'a');
  }
}
