import { spawn } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { MikroORM } from '@mikro-orm/core';
import { Command } from 'commander';
import OpenAI from 'openai';
import { freePort, waitFor } from './chaos-lab';
import { readJsonl, round, startBenchInstance } from './harness';
import { chainSessions, type Dialogue } from './multiturn-report';
import { createScratchDatabase } from './scratch-database';

/**
 * `npm run bench:turn`: drives ONE conversation to `--turns` turns (200) through the HTTP API against the
 * engine simulator at time scale 0 (its sleeps are skipped), run as its own process so that this process's
 * CPU is kvchat's (and its embedded PGlite's), and prints per turn index:
 * - `sql`: SQL statements MikroORM sent while the turn ran (its logger's `logQuery`: every statement,
 *   BEGIN/COMMIT included, logged or not);
 * - `emb`: `/v1/embeddings` requests kvchat sent (embeddings are served by the simulator here:
 *   EMBEDDINGS_PROVIDER=remote, so every request is seen on the wire);
 * - `appMs`: the turn's wall time at the client minus engine time, where engine time is the union of the
 *   intervals of kvchat's outgoing HTTP requests (chat, /tokenize, /v1/embeddings, /v1/models), observed through
 *   undici's diagnostics channels;
 * - `cpuMs`: CPU time of this process (kvchat, its embedded database and the small client) during the turn,
 *   `process.cpuUsage()`: steadier than wall time on a busy shared machine. With `--database-url URL` or
 *   `--local-postgres` kvchat uses that external PostgreSQL instead of embedded PGlite, so `cpuMs` is kvchat's
 *   and the client's alone (the server's CPU is PostgreSQL's own process); issue 14's CPU targets are read
 *   this way.
 *
 * `summary`: `sqlPerTurn`, `embeddingsPerTurn` (means over all turns), `appMsAtTurn10` / `appMsAtTurn200` (the
 * median app ms of the 10 turns ending at that index, so one GC pause does not decide the figure), and
 * `appMsGrowth` = appMsAtTurn200 / appMsAtTurn10 (issue 9 targets: <= 8, <= 1, <= 1.5).
 */

interface Options {
  data: string;
  turns: number;
  window: number;
  out: string;
  pinned?: string;
  quiet: boolean;
  printSql?: number;
  databaseUrl?: string;
  localPostgres: boolean;
  warmupTurns: number;
}

/** One measured turn. */
interface TurnFigures {
  turn: number;
  status: 'ok' | 'failed';
  sql: number;
  embeddings: number;
  engineRequests: number;
  wallMs: number;
  engineMs: number;
  appMs: number;
  cpuMs: number;
  promptTokens: number;
  compacted: boolean;
  responseCacheHit: boolean;
  error?: string;
}

/** The parts of a turn response the benchmark reads (from the stored assistant message). */
interface TurnResponse {
  assistantMessage: {
    usage?: { promptTokens: number } | null;
    cache?: { response?: { hit: boolean }; window?: { compacted?: boolean } } | null;
  };
}

/** undici's `undici:request:*` diagnostics messages, the fields read here. */
interface UndiciRequestMessage {
  request: { origin?: string | URL; path?: string };
}

/** Watches outgoing HTTP requests of this process (except those to `ignoreOrigin`): counts and timing. */
class OutgoingRequests {
  private readonly open = new Map<object, { started: number; path: string }>();
  private intervals: [number, number][] = [];
  embeddings = 0;
  requests = 0;

  constructor(private readonly ignoreOrigin: string) {}

  private readonly onCreate = (message: unknown): void => {
    const { request } = message as UndiciRequestMessage;
    const origin = String(request.origin ?? '').replace(/\/+$/, '');
    if (origin === this.ignoreOrigin) return;
    const path = request.path ?? '';
    this.requests++;
    if (/\/embeddings(\?|$)/.test(path)) this.embeddings++;
    this.open.set(request, { started: performance.now(), path });
  };

  private readonly onEnd = (message: unknown): void => {
    const { request } = message as UndiciRequestMessage;
    const pending = this.open.get(request);
    if (!pending) return;
    this.open.delete(request);
    this.intervals.push([pending.started, performance.now()]);
  };

  start(): void {
    subscribe('undici:request:create', this.onCreate);
    subscribe('undici:request:trailers', this.onEnd);
    subscribe('undici:request:error', this.onEnd);
  }

  stop(): void {
    unsubscribe('undici:request:create', this.onCreate);
    unsubscribe('undici:request:trailers', this.onEnd);
    unsubscribe('undici:request:error', this.onEnd);
  }

  /** Resets the counters and returns what was seen since the last call; engine ms = union of intervals. */
  take(until: number): { embeddings: number; requests: number; engineMs: number } {
    for (const pending of this.open.values()) this.intervals.push([pending.started, until]);
    for (const pending of this.open.values()) pending.started = until;
    const sorted = this.intervals.sort((a, b) => a[0] - b[0]);
    let engineMs = 0;
    let current: [number, number] | null = null;
    for (const [s, e] of sorted) {
      if (!current || s > current[1]) {
        if (current) engineMs += current[1] - current[0];
        current = [s, e];
      } else current[1] = Math.max(current[1], e);
    }
    if (current) engineMs += current[1] - current[0];
    const out = { embeddings: this.embeddings, requests: this.requests, engineMs };
    this.intervals = [];
    this.embeddings = 0;
    this.requests = 0;
    return out;
  }
}

const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main(): Promise<void> {
  const opts = new Command('bench:turn')
    .description(
      'One conversation to N turns through the HTTP API against the engine simulator at time scale 0: SQL ' +
        'statements, embedding requests and app-side ms per turn index.',
    )
    .option(
      '--data <jsonl>',
      'dialogues, one {messages:[{role,content}]} per line (user messages are chained)',
      '../shared/data/conversations/mtbench101.messages.jsonl',
    )
    .option('--turns <n>', 'turns of the conversation', (v) => parseInt(v, 10), 200)
    .option(
      '--window <n>',
      'turns whose median app ms stands for turn 10 and the last turn',
      (v) => parseInt(v, 10),
      10,
    )
    .option('--pinned <agent>', 'pin the conversation to an agent (default: unpinned, routed by intent)')
    .option('--quiet', 'print only every 10th turn', false)
    .option('--print-sql <turn>', 'print the SQL statements of this turn', (v) => parseInt(v, 10))
    .option(
      '--warmup-turns <n>',
      'turns of another conversation run first, unmeasured, so turn 10 is not measured on a cold JIT',
      (v) => parseInt(v, 10),
      0,
    )
    .option(
      '--database-url <url>',
      'an external PostgreSQL for kvchat (default: embedded PGlite in this process)',
    )
    .option(
      '--local-postgres',
      'create a fresh database on the local server (postgres@127.0.0.1:5432, createdb/dropdb) and use it',
      false,
    )
    .option('--out <json>', 'report path', 'bench/reports/turn.json')
    .parse()
    .opts<Options>();
  if (opts.turns < 10) throw new Error('--turns must be at least 10 (appMsGrowth compares with turn 10)');

  if (opts.databaseUrl && opts.localPostgres)
    throw new Error('--database-url and --local-postgres exclude each other');

  const loadAtStart = loadavg().map((x) => round(x, 2));
  const scratch = opts.localPostgres ? await createScratchDatabase(`kvchat_turn_${process.pid}`) : undefined;
  const databaseUrl = opts.databaseUrl ?? scratch?.url;
  const dropScratch = async (): Promise<void> =>
    scratch?.drop().catch((e: unknown) => void process.stderr.write(`dropdb: ${String(e)}\n`));
  const dialogues = await readJsonl<Dialogue>(resolve(opts.data));
  const [messages] = chainSessions(dialogues, 1, opts.turns);
  // The engine simulator in its own process (1 replica, time scale 0), so its CPU is not kvchat's.
  const simUrl = `http://127.0.0.1:${await freePort()}`;
  const simulator = spawn(
    process.execPath,
    [
      join(__dirname, '../src/simulator/main.js'),
      '--port',
      new URL(simUrl).port,
      '--time-scale',
      '0',
      '--replies',
      resolve(opts.data),
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const stopSimulator = (): void => void simulator.kill('SIGTERM');
  process.once('exit', stopSimulator);
  await waitFor('the engine simulator', async () => (await fetch(`${simUrl}/health`)).ok);
  const instance = await startBenchInstance(
    {
      LOG_LEVEL: 'error',
      INFERENCE_ENDPOINTS: `${simUrl}/v1`,
      // Embeddings from the simulator's /v1/embeddings, so each request is counted on the wire.
      EMBEDDINGS_PROVIDER: 'remote',
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    },
    'turn',
  ).catch(async (e: unknown) => {
    stopSimulator();
    await dropScratch();
    throw e;
  });
  const orm = instance.running.app.get(MikroORM);
  const logger = orm.config.getLogger();
  const logQuery = logger.logQuery.bind(logger);
  let sql = 0;
  let printing = false;
  let statements: string[] = [];
  logger.logQuery = (context) => {
    sql++;
    const statement = (context.query ?? '').replace(/\s+/g, ' ');
    statements.push(statement.slice(0, 120));
    if (printing) console.log(`  sql: ${statement.slice(0, 200)}`);
    logQuery(context);
  };
  const outgoing = new OutgoingRequests(new URL(instance.url).origin);
  const client = new OpenAI({
    baseURL: instance.url,
    apiKey: instance.apiKey,
    maxRetries: 0,
    timeout: 600_000,
  });
  const turns: TurnFigures[] = [];
  const statementsOf: string[][] = [];
  process.stderr.write(
    `bench:turn: 1 conversation x ${opts.turns} turns, engine simulator (1 replica, time scale 0; answers are synthetic)\n`,
  );
  try {
    if (opts.warmupTurns > 0) {
      const warmup = await client.post<{ id: string }>('/v1/conversations', {
        body: { title: 'bench:turn warm-up' },
      });
      // From the end of the data, so the measured conversation's questions are not answered from the cache.
      const [warmupMessages] = chainSessions([...dialogues].reverse(), 1, opts.warmupTurns);
      for (const content of warmupMessages)
        await client.post(`/v1/conversations/${warmup.id}/turns`, { body: { content } });
    }
    const conversation = await client.post<{ id: string }>('/v1/conversations', {
      body: { title: 'bench:turn', ...(opts.pinned ? { agent: opts.pinned } : {}) },
    });
    outgoing.start();
    for (let t = 0; t < messages.length; t++) {
      outgoing.take(performance.now());
      sql = 0;
      statements = [];
      printing = opts.printSql === t + 1;
      const cpuBefore = process.cpuUsage();
      const started = performance.now();
      let response: TurnResponse | null = null;
      let error: string | undefined;
      try {
        response = await client.post<TurnResponse>(`/v1/conversations/${conversation.id}/turns`, {
          body: { content: messages[t] },
        });
      } catch (e) {
        error = e instanceof Error ? e.message : String(e);
      }
      const ended = performance.now();
      const cpu = process.cpuUsage(cpuBefore);
      const seen = outgoing.take(ended);
      const wallMs = ended - started;
      const figures: TurnFigures = {
        turn: t + 1,
        status: response ? 'ok' : 'failed',
        sql,
        embeddings: seen.embeddings,
        engineRequests: seen.requests,
        wallMs: round(wallMs, 3),
        engineMs: round(seen.engineMs, 3),
        appMs: round(wallMs - seen.engineMs, 3),
        cpuMs: round((cpu.user + cpu.system) / 1000, 3),
        promptTokens: response?.assistantMessage.usage?.promptTokens ?? 0,
        compacted: response?.assistantMessage.cache?.window?.compacted === true,
        responseCacheHit: response?.assistantMessage.cache?.response?.hit === true,
        ...(error ? { error } : {}),
      };
      turns.push(figures);
      statementsOf.push(statements);
      if (!opts.quiet || figures.turn % 10 === 0 || figures.status === 'failed') {
        console.log(
          `turn ${String(figures.turn).padStart(3)}  sql ${String(figures.sql).padStart(3)}  emb ${figures.embeddings}  ` +
            `engine req ${String(figures.engineRequests).padStart(2)}  wall ${figures.wallMs.toFixed(1).padStart(7)} ms  ` +
            `engine ${figures.engineMs.toFixed(1).padStart(7)} ms  app ${figures.appMs.toFixed(1).padStart(7)} ms  ` +
            `cpu ${figures.cpuMs.toFixed(1).padStart(6)} ms  ` +
            `prompt ${String(figures.promptTokens).padStart(6)} tok${figures.compacted ? '  compacted' : ''}` +
            `${figures.responseCacheHit ? '  cache hit' : ''}${error ? `  FAILED: ${error}` : ''}`,
        );
      }
    }
  } finally {
    outgoing.stop();
    await instance.close();
    stopSimulator();
    await dropScratch();
  }

  const ok = turns.filter((t) => t.status === 'ok');
  // Statements beyond the usual count come from work that is not the turn's own but ran meanwhile (the
  // usage ledger's queued writes, expiry purges, ...): listed so they can be told apart.
  const usualSql = median(ok.map((t) => t.sql));
  const extra = turns
    .map((t, i) => ({ turn: t.turn, sql: t.sql, statements: statementsOf[i] }))
    .filter((t) => t.sql > usualSql);
  for (const t of extra) {
    console.log(`turn ${t.turn}: ${t.sql} statements (usually ${usualSql}):`);
    for (const s of t.statements) console.log(`    ${s}`);
  }
  const mean = (f: (t: TurnFigures) => number): number => ok.reduce((a, t) => a + f(t), 0) / ok.length;
  const appAt = (index: number): number =>
    median(turns.slice(Math.max(0, index - opts.window), index).map((t) => t.appMs));
  const appMsAtTurn10 = appAt(10);
  const appMsAtLast = appAt(turns.length);
  const cpuAt = (index: number): number =>
    median(turns.slice(Math.max(0, index - opts.window), index).map((t) => t.cpuMs));
  const summary = {
    turns: turns.length,
    failedTurns: turns.length - ok.length,
    sqlPerTurn: round(
      mean((t) => t.sql),
      2,
    ),
    embeddingsPerTurn: round(
      mean((t) => t.embeddings),
      2,
    ),
    appMsAtTurn10: round(appMsAtTurn10, 2),
    [`appMsAtTurn${turns.length}`]: round(appMsAtLast, 2),
    appMsGrowth: round(appMsAtLast / appMsAtTurn10, 3),
    cpuMsAtTurn10: round(cpuAt(10), 2),
    [`cpuMsAtTurn${turns.length}`]: round(cpuAt(turns.length), 2),
    cpuMsGrowth: round(cpuAt(turns.length) / cpuAt(10), 3),
    maxSqlPerTurn: Math.max(...ok.map((t) => t.sql)),
    compactions: ok.filter((t) => t.compacted).length,
    responseCacheHits: ok.filter((t) => t.responseCacheHit).length,
  };
  console.log('summary', JSON.stringify(summary, null, 2));
  const out = resolve(opts.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    JSON.stringify(
      {
        command: 'bench:turn',
        data: opts.data,
        engine: 'engine simulator (own process, 1 replica, time scale 0): answers are synthetic',
        parameters: {
          turns: opts.turns,
          warmupTurns: opts.warmupTurns,
          window: opts.window,
          pinned: opts.pinned ?? null,
          embeddings: 'remote (the simulator)',
          database: databaseUrl ? 'external PostgreSQL' : 'embedded PGlite (in this process)',
          cpus: cpus().length,
          loadAverageAtStart: loadAtStart,
          loadAverageAtEnd: loadavg().map((x) => round(x, 2)),
        },
        measurement:
          'sql: MikroORM logQuery calls during the turn (all statements, BEGIN/COMMIT included); embeddings: ' +
          '/v1/embeddings requests kvchat sent; appMs: client wall time minus the union of kvchat outgoing HTTP ' +
          'request intervals (undici diagnostics channels). appMsAtTurnN: median of the `window` turns ending at N.',
        summary,
        turnsWithExtraStatements: extra,
        perTurn: turns,
      },
      null,
      2,
    ),
  );
  console.log(`report written to ${opts.out}`);
  if (ok.length < turns.length) process.exitCode = 1;
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
