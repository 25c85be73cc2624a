import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO = join(__dirname, '..', '..');

/** The app compiled (swc, as `npm run build` does) into a temporary directory, for child processes. */
export interface Build {
  dir: string;
  /** Path of a compiled entry, e.g. `entry('src/main.js')`. */
  entry(path: string): string;
  remove(): Promise<void>;
}

/** Compiles src/ into a fresh temporary directory; node_modules resolve through NODE_PATH. */
export async function buildApp(): Promise<Build> {
  const dir = await mkdtemp(join(tmpdir(), 'kvchat-build-'));
  await run(join(REPO, 'node_modules', '.bin', 'swc'), ['src', '-d', dir, '--copy-files', '--quiet'], {
    cwd: REPO,
  });
  // Plain CommonJS helpers the app requires at run time (the word-vector table builder), as `npm run build` ships them.
  await cp(join(REPO, 'scripts'), join(dir, 'scripts'), { recursive: true });
  return {
    dir,
    entry: (path) => join(dir, path),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Environment of a child process: this one's, plus module resolution and the overrides. */
export function childEnv(overrides: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, NODE_PATH: join(REPO, 'node_modules'), NODE_OPTIONS: '', ...overrides };
}

/** Runs a compiled CLI to its end. */
export async function runNode(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [script, ...args], { env, cwd });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof err.code === 'number' ? err.code : -1,
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? '',
    };
  }
}

/** A kvchat process started from the build. */
export interface KvchatProcess {
  child: ChildProcess;
  /** Where it serves HTTP (from its start-up log line). */
  url: string;
  /** Everything it wrote so far (JSON log lines). */
  output(): string;
  /** Resolves with the exit code once it exits. */
  exited: Promise<number | null>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<number | null>;
}

/**
 * Starts `node <build>/src/main.js` with `env` (PORT=0 on loopback, JSON logs) and waits for its
 * start-up line, which carries its URL.
 * @throws Error with its output when it exits or does not start within `timeoutMs`
 */
export async function startKvchat(
  build: Build,
  env: NodeJS.ProcessEnv,
  timeoutMs = 90_000,
): Promise<KvchatProcess> {
  const child = spawn(process.execPath, [build.entry('src/main.js')], {
    env: { ...env, PORT: '0', HOST: '127.0.0.1', LOG_FORMAT: 'json', LOG_LEVEL: 'info' },
    cwd: build.dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`kvchat did not start in ${timeoutMs} ms:\n${output}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      const started = /"context":"kvchat","msg":"[^"]*?(http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (started) {
        clearTimeout(timer);
        resolve(started[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`kvchat exited with ${code} before it started:\n${output}`));
    });
  });
  return {
    child,
    url,
    output: () => output,
    exited,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/**
 * Polls `check` until it returns a value (not undefined) or `timeoutMs` passes; the bounded wait for
 * something another process does.
 * @throws Error naming `what` on timeout
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
