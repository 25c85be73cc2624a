import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, relative, resolve } from 'node:path';
import { MultiBar, Presets } from 'cli-progress';
import { Command } from 'commander';
import OpenAI from 'openai';
import type { Env } from '../src/config/config.loader';
import { rootUrlOf } from '../src/inference/adapters/vllm.adapter';
import { EndpointRouter } from '../src/inference/endpoint-router';
import type { PrefixLimitSample } from '../src/simulator/prefix-limit';
import { readJsonl, round, startBenchInstance } from './harness';
import { renderMultiturnChart } from './multiturn-chart';
import {
  chainSessions,
  type ConfigFigures,
  type Dialogue,
  figuresOf,
  type MeasuredTurn,
  summarizeConfigs,
} from './multiturn-report';

/**
 * The configurations of ../shared/design/benchmarks.md, each run on a fresh kvchat + simulator:
 * - `cache_off`: engine prefix caching and LMCache off, response cache off;
 * - `naive`: what a typical backend does — clock and user name in the system prompt, a sliding window,
 *   round-robin over replicas (engine caches on);
 * - `default`: this project's defaults;
 * - `default_1_replica`: the defaults on one replica, for `replicaReuseGap`.
 */
const CONFIGS: Record<string, { env: Env; replicas?: number; description: string }> = {
  cache_off: {
    description: 'engine prefix caching + LMCache off, response cache off',
    env: { SIMULATOR_PREFIX_CACHING: 'false', SIMULATOR_LMCACHE: 'false', RESPONSE_CACHE_ENABLED: 'false' },
  },
  naive: {
    description: 'clock + user name in the system prompt, sliding window, round-robin',
    env: { PROMPT_LAYOUT: 'naive', CONTEXT_POLICY: 'sliding', ROUTER_POLICY: 'round-robin' },
  },
  default: { description: "kvchat's defaults", env: {} },
  default_1_replica: { description: "kvchat's defaults on one replica", env: {}, replicas: 1 },
};

/** What a turn response carries that the benchmark reads (the stored assistant message). */
interface TurnResponse {
  assistantMessage: {
    replica: string | null;
    usage: { promptTokens: number; cachedTokens: number; completionTokens: number };
    timings: { ttftMs: number; totalMs: number; engineTtftMs?: number; engineModelPrefillMs?: number };
    cache: { backendReusableTokens?: number; response?: { hit: boolean }; window?: { compacted?: boolean } };
  };
}

interface Options {
  data: string;
  replies?: string;
  conversations: number;
  turns: number;
  replicas: number;
  concurrency: number;
  timeScale: string;
  contextTokens?: string;
  configs: string;
  out: string;
  chart?: string;
  /** A running kvchat to measure instead of in-process ones (e.g. compose with vLLM + LMCache). */
  baseUrl?: string;
  apiKey?: string;
  /** The configuration name of a --base-url run. */
  label?: string;
  /** Earlier reports whose configurations are drawn and summarised with this run's. */
  merge: string[];
}

/** Where a configuration runs: a kvchat started for it in-process, or a running one (--base-url). */
interface Target {
  url: string;
  /** The in-process engine simulator (its `/sim/prefix-limit`), none with --base-url. */
  simulatorUrl?: string;
  /** API keys of two tenants (one with --base-url). */
  keys: string[];
  close(): Promise<void>;
}

async function startTarget(name: string, opts: Options): Promise<Target> {
  if (opts.baseUrl) {
    return { url: opts.baseUrl, keys: [opts.apiKey!], close: () => Promise.resolve() };
  }
  const config = CONFIGS[name];
  const instance = await startBenchInstance(
    {
      LOG_LEVEL: 'error',
      SIMULATOR_REPLICAS: String(config.replicas ?? opts.replicas),
      SIMULATOR_TIME_SCALE: opts.timeScale,
      SIMULATOR_REPLIES_FILE: resolve(opts.replies ?? opts.data),
      SIMULATOR_PREFIX_LIMIT: 'true',
      ...(opts.contextTokens ? { INFERENCE_MAX_CONTEXT_TOKENS: opts.contextTokens } : {}),
      ...config.env,
    },
    `multiturn-${name}`,
  );
  // Two tenants share the engines (their cache salts differ): isolation must not cost reuse.
  const keys = [instance.apiKey, await instance.newKey(`multiturn-${name}-b`)];
  const replica = instance.running.app.get(EndpointRouter).replicas[0];
  return {
    url: instance.url,
    keys,
    simulatorUrl: replica ? rootUrlOf(replica.baseURL) : undefined,
    close: () => instance.close(),
  };
}

async function runConfig(
  name: string,
  sessions: string[][],
  opts: Options,
  bars: MultiBar,
): Promise<{
  turns: MeasuredTurn[];
  wallSeconds: number;
  engineStats: unknown;
  prefixReuseLimit?: number;
}> {
  const target = await startTarget(name, opts);
  // The API is called like any client would: the OpenAI SDK's generic JSON transport.
  const clients = target.keys.map(
    (apiKey) => new OpenAI({ baseURL: target.url, apiKey, maxRetries: 0, timeout: 600_000 }),
  );
  const bar = bars.create(sessions.length * opts.turns, 0, { config: name.padEnd(17) });
  const turns: MeasuredTurn[] = [];
  const started = performance.now();
  const runSession = async (messages: string[], index: number): Promise<void> => {
    const client = clients[index % clients.length];
    const conversation = await client.post<{ id: string }>('/v1/conversations', {
      body: {
        title: `multiturn ${index + 1}`,
        metadata: { userName: `User ${index + 1}`, bench: 'multiturn' },
      },
    });
    for (let t = 0; t < messages.length; t++) {
      const sent = performance.now();
      try {
        const { assistantMessage: res } = await client.post<TurnResponse>(
          `/v1/conversations/${conversation.id}/turns`,
          { body: { content: messages[t] } },
        );
        turns.push({
          config: name,
          conversation: index + 1,
          turn: t + 1,
          status: 'ok',
          promptTokens: res.usage.promptTokens,
          cachedTokens: res.usage.cachedTokens,
          backendReusableTokens: res.cache.backendReusableTokens ?? 0,
          engineTtftMs: res.timings.engineModelPrefillMs ?? null,
          wallTtftMs: res.timings.ttftMs,
          apiMs: performance.now() - sent,
          replica: res.replica,
          responseCacheHit: res.cache.response?.hit === true,
          windowMoved: res.cache.window?.compacted === true,
        });
      } catch (e) {
        turns.push({
          config: name,
          conversation: index + 1,
          turn: t + 1,
          status: 'failed',
          error: e instanceof Error ? e.message : String(e),
          promptTokens: 0,
          cachedTokens: 0,
          backendReusableTokens: 0,
          engineTtftMs: null,
          wallTtftMs: 0,
          apiMs: performance.now() - sent,
          replica: null,
          responseCacheHit: false,
          windowMoved: false,
        });
      }
      bar.increment();
    }
  };
  let next = 0;
  let engineStats: unknown;
  let prefixReuseLimit: number | undefined;
  try {
    await Promise.all(
      Array.from({ length: Math.max(1, Math.min(opts.concurrency, sessions.length)) }, async () => {
        while (next < sessions.length) {
          const i = next++;
          await runSession(sessions[i], i);
        }
      }),
    );
    // What the replicas themselves counted (admin key: the global scope includes the engine section;
    // a --base-url key may not be an admin's, then it is left out).
    engineStats = await clients[0].get<{ layers: { engine?: unknown } }>('/v1/cache/stats?scope=global').then(
      (stats) => stats.layers.engine,
      () => null,
    );
    if (target.simulatorUrl) prefixReuseLimit = await readPrefixReuseLimit(target.simulatorUrl, sessions);
  } finally {
    await target.close();
  }
  return { turns, wallSeconds: (performance.now() - started) / 1000, engineStats, prefixReuseLimit };
}

/**
 * `prefixReuseLimit` from the simulator's samples: Σ tokens each prompt shares with an earlier prompt +
 * answer / Σ prompt tokens, over turns 2 and later. A sample's turn is found from its last user message
 * (the session's message at that index, after any head the layout puts before it); messages that occur at
 * turn 1 anywhere, or not at all, are left out.
 */
async function readPrefixReuseLimit(simulatorUrl: string, sessions: string[][]): Promise<number> {
  const res = await fetch(`${simulatorUrl}/sim/prefix-limit`);
  if (!res.ok) return NaN;
  const { samples } = (await res.json()) as { samples: PrefixLimitSample[] };
  const firstTurns = new Set(sessions.map((s) => s[0]));
  const later = new Set(sessions.flatMap((s) => s.slice(1)));
  let shared = 0;
  let prompt = 0;
  // The user message as sent may carry a head (`Date: ...`, volatile context) before the message itself.
  const messageOf = (sent: string): string | undefined => {
    if (firstTurns.has(sent) || later.has(sent)) return sent;
    for (let i = sent.indexOf('\n'); i >= 0; i = sent.indexOf('\n', i + 1)) {
      const tail = sent.slice(i + 1);
      if (firstTurns.has(tail) || later.has(tail)) return tail;
    }
    return undefined;
  };
  for (const s of samples) {
    const m = s.lastUserMessage === undefined ? undefined : messageOf(s.lastUserMessage);
    if (m === undefined || firstTurns.has(m) || !later.has(m)) continue;
    shared += s.sharedTokens;
    prompt += s.promptTokens;
  }
  return prompt > 0 ? round(shared / prompt, 4) : NaN;
}

const pct = (v: number): string => (Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : 'n/a');
const ms = (v: number): string => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');

function printTable(configs: Record<string, ConfigFigures>, walls: Record<string, number>): void {
  const rows = Object.entries(configs).map(([name, f]) => ({
    config: name,
    turns: f.turns,
    failed: f.failedTurns,
    'rc hits': f.responseCacheHits,
    'TTFT p50 ms': ms(f.ttftP50Ms),
    'TTFT p95 ms': ms(f.ttftP95Ms),
    'prefix reuse': pct(f.prefixReuse),
    'reuse limit': pct(f.prefixReuseLimit ?? NaN),
    'backend reuse': pct(f.backendPrefixReuse),
    'prefill saved': pct(f.prefillReduction),
    'window moves': f.windowMoves,
    'API p50 ms': ms(f.apiP50Ms),
    'wall s': walls[name]?.toFixed(1),
  }));
  console.table(rows);
}

async function main(): Promise<void> {
  const program = new Command('bench:multiturn')
    .description(
      'Replays real dialogues chained into long sessions through the HTTP API under cache_off, naive and default ' +
        '(plus default on one replica), each on a fresh kvchat with the engine simulator; prints a table, writes a JSON ' +
        'report and an SVG chart.',
    )
    .requiredOption('--data <jsonl>', 'dialogues, one {messages:[{role,content}]} per line')
    .option(
      '--replies <jsonl>',
      'replies file for the simulator (default: --data), so histories carry real answers',
    )
    .option('--conversations <n>', 'sessions per configuration', (v) => parseInt(v, 10), 16)
    .option(
      '--turns <k>',
      'user turns per session (dialogues are chained to reach it)',
      (v) => parseInt(v, 10),
      40,
    )
    .option('--replicas <r>', 'engine replicas (simulator)', (v) => parseInt(v, 10), 4)
    .option('--concurrency <n>', 'sessions in flight at once (default: all)', (v) => parseInt(v, 10))
    .option(
      '--time-scale <x>',
      'simulator time scale (1 = calibrated real time); TTFT figures use model time',
      '0.05',
    )
    .option(
      '--context-tokens <n>',
      'INFERENCE_MAX_CONTEXT_TOKENS for every configuration (default: the app default)',
    )
    .option('--configs <list>', 'configurations to run', Object.keys(CONFIGS).join(','))
    .option('--out <json>', 'report path', 'bench/reports/multiturn.json')
    .option('--chart <svg>', 'chart path (default: beside --out, .svg)')
    .option(
      '--base-url <url>',
      'measure a running kvchat (e.g. docker/compose.yaml with vLLM + LMCache) as one configuration, --label',
    )
    .option('--api-key <key>', 'API key for --base-url (default: $KVCHAT_API_KEY)')
    .option(
      '--label <name>',
      'configuration name of the --base-url run (cache_off and default are summarised)',
    )
    .option(
      '--merge <json...>',
      'earlier multiturn reports whose configurations are drawn and summarised with this run',
      [],
    )
    .parse();
  const raw = program.opts<Omit<Options, 'concurrency'> & { concurrency?: number }>();
  const opts: Options = {
    ...raw,
    apiKey: raw.apiKey ?? process.env.KVCHAT_API_KEY,
    concurrency: raw.concurrency ?? raw.conversations,
  };
  if (opts.baseUrl && (!opts.apiKey || !opts.label))
    throw new Error('--base-url needs --api-key (or KVCHAT_API_KEY) and --label');
  const names = opts.baseUrl ? [opts.label!] : opts.configs.split(',').map((s) => s.trim());
  if (!opts.baseUrl)
    for (const n of names)
      if (!CONFIGS[n])
        throw new Error(`unknown configuration ${n} (known: ${Object.keys(CONFIGS).join(', ')})`);
  const merged: Record<string, ConfigFigures> = {};
  for (const path of opts.merge) {
    const earlier = JSON.parse(readFileSync(path, 'utf8')) as { perConfig: Record<string, ConfigFigures> };
    Object.assign(merged, earlier.perConfig);
  }

  const dialogues = await readJsonl<Dialogue>(opts.data);
  const sessions = chainSessions(dialogues, opts.conversations, opts.turns);
  const engineLabel = opts.baseUrl
    ? `the running kvchat at ${opts.baseUrl}`
    : `engine simulator, ${opts.replicas} replicas, time scale ${opts.timeScale}: answers are synthetic or replayed`;
  process.stderr.write(
    `multiturn: ${sessions.length} sessions x ${opts.turns} turns, configs ${names.join(', ')} (${engineLabel})\n`,
  );
  const bars = new MultiBar(
    {
      format: '{config} [{bar}] {value}/{total} turns | eta {eta}s',
      hideCursor: true,
      clearOnComplete: false,
      // Without a terminal (CI logs), print the bars every 10 s instead of redrawing them.
      noTTYOutput: !process.stderr.isTTY,
      notTTYSchedule: 10_000,
    },
    Presets.shades_classic,
  );
  const turns: MeasuredTurn[] = [];
  const walls: Record<string, number> = {};
  const engine: Record<string, unknown> = {};
  const limits: Record<string, number | undefined> = {};
  const started = performance.now();
  try {
    for (const name of names) {
      const run = await runConfig(name, sessions, opts, bars);
      turns.push(...run.turns);
      walls[name] = run.wallSeconds;
      engine[name] = run.engineStats;
      limits[name] = run.prefixReuseLimit;
    }
  } finally {
    bars.stop();
  }
  const configs: Record<string, ConfigFigures> = { ...merged };
  for (const name of names) {
    configs[name] = figuresOf(turns.filter((t) => t.config === name));
    if (limits[name] !== undefined) configs[name].prefixReuseLimit = limits[name];
  }
  const summary = summarizeConfigs(configs);

  printTable(configs, walls);
  console.log('summary', JSON.stringify(summary, null, 2));

  const out = resolve(opts.out);
  const chart = resolve(opts.chart ?? out.replace(/\.json$/, '') + '.svg');
  mkdirSync(dirname(out), { recursive: true });
  mkdirSync(dirname(chart), { recursive: true });
  writeFileSync(
    chart,
    await renderMultiturnChart(configs, {
      title: [
        `kvchat multi-turn: ${sessions.length} sessions x ${opts.turns} turns`,
        opts.baseUrl
          ? `measured on ${opts.baseUrl}${opts.merge.length > 0 ? ' (with earlier runs merged)' : ''}`
          : `SIMULATED: engine simulator (${opts.replicas} replicas), not a GPU`,
      ],
      names: Object.keys(configs).filter((n) => n !== 'default_1_replica'),
      ttftTitle: opts.baseUrl
        ? 'TTFT p50 (ms, measured by kvchat)'
        : 'engine TTFT p50 (ms, simulated model time)',
    }),
  );
  const report = {
    command: 'bench:multiturn',
    data: opts.data,
    engine: opts.baseUrl ? { baseUrl: opts.baseUrl, label: opts.label } : 'engine simulator (in-process)',
    merged: opts.merge,
    parameters: {
      conversations: sessions.length,
      turns: opts.turns,
      replicas: opts.replicas,
      concurrency: opts.concurrency,
      timeScale: Number(opts.timeScale),
      contextTokens: opts.contextTokens ? Number(opts.contextTokens) : 'app default',
      tenants: 2,
      cpus: cpus().length,
    },
    ttftMeasurement:
      'TTFT figures are the engine simulator’s modelled TTFT per request in calibrated model time ' +
      '(x-kvchat-engine-model-prefill-ms: overhead + uncached prompt tokens x prefill cost + tokens loaded from ' +
      'LMCache x load cost, unscaled, without queueing), turns 2 and later; wallTtftP50Ms is what the backend ' +
      'measured under the time scale (noisy, shared machine).',
    configurations: Object.fromEntries(
      names.map((n) => [n, CONFIGS[n]?.description ?? `the running kvchat at ${opts.baseUrl}`]),
    ),
    summary,
    wallSeconds: Number(((performance.now() - started) / 1000).toFixed(1)),
    chart: relative(dirname(out), chart),
    perConfig: Object.fromEntries(
      Object.keys(configs).map((n) =>
        names.includes(n)
          ? [n, { ...configs[n], wallSeconds: Number(walls[n].toFixed(1)), engine: engine[n] }]
          : [n, configs[n]],
      ),
    ),
    failures: turns.filter((t) => t.status === 'failed').slice(0, 20),
  };
  writeFileSync(out, JSON.stringify(report, null, 2));
  console.log(`report written to ${opts.out}; chart ${relative(process.cwd(), chart)}`);
  if (turns.some((t) => t.status === 'failed')) process.exitCode = 1;
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
