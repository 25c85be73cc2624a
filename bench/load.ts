import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';
import { dirname, join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import pLimit from 'p-limit';
import { request } from 'undici';
import { mulberry32 } from '../src/common/prng';
import { sleep } from './chaos-lab';
import { quantile, readJsonl, round } from './harness';
import type { BurstWork, PlannedTurn } from './load-burst-worker';
import { Client, type Sample } from './load-client';
import { LoadLab, type LabProcess, machineWindow, type ProcSample, readMachine } from './load-lab';

/**
 * `npm run bench:load -- --users N --think-seconds S --duration-seconds D --api-processes K
 *   [--burst N] [--rate R] [--database-url URL] [--mode turns|completions] [--portkey-dir DIR]
 *   [--nginx /usr/sbin/nginx] --out FILE`
 *
 * Issue 14, item 1. Starts the engine simulator, one kvchat worker and K kvchat api processes
 * (KVCHAT_ROLE, docs/deploy.md) on an external PostgreSQL (a fresh `kvchat_load_<pid>` database on
 * the local server unless --database-url) and the shared Redis under a fresh key prefix, then drives
 * them with undici clients:
 * - closed loop (default): N users, each holding a conversation, post a streamed turn after an
 *   exponential think time (mean --think-seconds), again and again until --duration-seconds;
 * - open loop (`--rate R`): turns arrive as a Poisson process at R/s, each on an idle user's conversation;
 * - burst (`--burst N`): N turns at once on N conversations; clients give up after --give-up-seconds;
 *   RSS is read before, at the peak and --settle-seconds after. `--client-threads T` posts them from T
 *   worker threads (bench/load-burst-worker.ts), so one event loop's connection setup does not pace them.
 * Turns go round-robin over the api processes (as a load balancer spreads them), so the turn lock and
 * the conversation state are shared through PostgreSQL and Redis, never a process. With `--nginx BINARY`
 * they go through nginx instead, configured by the repository's docker/nginx.conf (the compose gateway:
 * keep-alive pool, `max_conns` per replica, its own 503 `Overloaded` past it) in front of the K processes;
 * `details.cpuMsPerTurnByRole.proxy` is nginx's CPU per turn.
 *
 * `--mode completions` drives the stateless `POST /v1/chat/completions` instead (not streamed unless
 * `--stream`; TTFT is then the whole answer), against the simulator directly, kvchat, and Portkey's gateway
 * (`--portkey-dir`, an `npm i @portkey-ai/gateway` directory) one after another with the same load, and
 * reports each: requests/s, TTFT, gateway CPU ms per request (/proc; of it, the main thread's).
 * `--repeat-prompts N` (with `--mode completions`) measures an exact response-cache hit instead: kvchat
 * alone, RESPONSE_CACHE_ENABLED=true, N fixed one-message prompts each answered (and stored) before the
 * measured window, so that every measured request is an exact hit (`kvchatExactHits` counts them from the
 * `x-kvchat-cache` header).
 *
 * Figures (JSON `summary`; docs/scaling.md reads them):
 * - `turnsPerSecondOffered`: turns the clients started / measured seconds; `turnsPerSecondServed`: turns
 *   answered whole (the SSE `turn` event) / the same seconds.
 * - `errors`, `shed`: counts (by status and code under `byStatus`); shed = 503 `Overloaded` (admission control).
 * - `ttftP50Ms`, `ttftP99Ms`: client-side time from sending the request to the first `token` event, ms.
 * - `addedTtftP99Ms`: p99 of (client TTFT − the engine's own TTFT, `assistantMessage.timings.engineTtftMs`
 *   that the simulator reports in `x-kvchat-engine-ttft-ms`), ms: what kvchat and the network add.
 * - `cpuMsPerTurn`: user + system CPU of all api processes over the run (/proc/<pid>/stat) / turns served, ms;
 *   `details.cpuMsPerTurnByRole.apiMainThread` is the event loop's share (/proc/<pid>/task/<pid>/stat), the
 *   rest being worker threads (the local sentence model).
 * - `details.machineCpu`: the whole machine's CPU over the same window per turn served (/proc/stat and every
 *   /proc/<pid>/stat): `busyMsPerTurn`, `utilisation` (busy / busy + idle, all cores) and `msPerTurn` by role
 *   (api, worker, simulator, proxy, benchClient) or command (postgres, redis-server, nginx's workers): what
 *   kvchat's share of the cores is beside the simulator, the bench's own client and the database.
 * - `details.engineRequestsPerTurn`: requests the simulator served in the window by route (its
 *   `http_requests_total`, as vLLM exports it) / turns served: a turn's chat stream, `/tokenize` calls and
 *   embeddings.
 * - `rssMbMax`: highest resident set of an api process seen by a 500 ms sampler, MB;
 *   `details.memoryMbAtEndByProcess` splits each api's memory at the end of the run (its /metrics: resident
 *   set, V8 heap used and total, external memory such as Buffers), MB.
 * - `eventLoopDelayP99Ms`: highest p99 over the api processes of Node's event-loop delay during the run
 *   (prom-client's `nodejs_eventloop_lag_p99_seconds`, a perf_hooks.monitorEventLoopDelay histogram reset at
 *   each scrape; the bench scrapes at the start and the end), ms.
 * - `storedAfterAbandon`: turns whose client gave up (timeout) and that were nevertheless answered and
 *   stored, counted in the database after the run.
 * - `details.firstAnswerMsByOutcome`: count, p50, p99 and max of request sent → first token (answered) or →
 *   the whole refusal, by outcome, a shed turn by its `reason` (`queue_full`, `queue_timeout`, `proxy_max_conns`).
 * The load average of the machine is printed beside the figures (the machine is shared).
 */

interface Options {
  users: number;
  thinkSeconds: number;
  durationSeconds: number;
  apiProcesses: number;
  burst?: number;
  rate?: number;
  databaseUrl?: string;
  redisUrl: string;
  mode: 'turns' | 'completions';
  portkeyDir?: string;
  /** Turns mode: clients talk to this nginx binary, configured by docker/nginx.conf, in front of the api processes. */
  nginx?: string;
  maxTokens: number;
  giveUpSeconds: number;
  settleSeconds: number;
  clientThreads: number;
  timeScale: number;
  connections: number;
  apiEnv: string[];
  cpuProf?: string;
  data?: string;
  seed: number;
  warmupTurns: number;
  stream: boolean;
  repeatPrompts?: number;
  out: string;
}

function positive(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}
function count(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number ≥ 0');
  return n;
}

/** Exponential draw with the given mean, from a seeded PRNG. */
function exponential(random: () => number, mean: number): number {
  return -Math.log(1 - random()) * mean;
}

/** User messages: from --data (user turns of a JSONL of dialogues) or a small synthetic vocabulary. */
async function loadQuestions(path: string | undefined): Promise<string[]> {
  if (path) {
    const rows = await readJsonl<{ messages: { role: string; content: string }[] }>(path);
    const qs = rows.flatMap((r) => r.messages.filter((m) => m.role === 'user').map((m) => m.content));
    if (qs.length > 0) return qs;
  }
  const topics = ['prefix caching', 'KV cache blocks', 'load shedding', 'event loops', 'PostgreSQL indexes'];
  const asks = ['How does', 'Why would', 'When should', 'What makes'];
  return topics.flatMap((t) => asks.map((a) => `${a} ${t} matter for a chat backend under load?`));
}

/** What the api processes did over a measured window. */
interface ProcessWindow {
  cpuMs: Record<string, number>;
  /** Main-thread (event-loop) CPU, ms. */
  mainThreadCpuMs: Record<string, number>;
  rssMbMax: Record<string, number>;
  rssMbEnd: Record<string, number>;
  eventLoopDelayP99Ms: Record<string, number>;
  /** Where an api process's memory is at the end of the window (its /metrics), MB. */
  memoryMbAtEnd: Record<string, { rss: number; heapUsed: number; heapTotal: number; external: number }>;
  shedCounted: number;
  abandonedInQueueCounted: number;
}

/** Reads the event-loop histogram once so that the next scrape covers only the window that follows. */
async function resetEventLoopHistograms(lab: LoadLab, processes: LabProcess[]): Promise<void> {
  await Promise.all(processes.map((p) => lab.scrape(p).catch(() => [])));
}

async function closeWindow(
  lab: LoadLab,
  processes: LabProcess[],
  before: Record<string, ProcSample>,
): Promise<ProcessWindow> {
  const after = lab.snapshot();
  const window: ProcessWindow = {
    cpuMs: {},
    mainThreadCpuMs: {},
    rssMbMax: {},
    rssMbEnd: {},
    eventLoopDelayP99Ms: {},
    memoryMbAtEnd: {},
    shedCounted: 0,
    abandonedInQueueCounted: 0,
  };
  for (const p of lab.processes) {
    if (after[p.name] && before[p.name]) {
      window.cpuMs[p.name] = round(after[p.name].cpuMs - before[p.name].cpuMs, 0);
      window.mainThreadCpuMs[p.name] = round(
        after[p.name].mainThreadCpuMs - before[p.name].mainThreadCpuMs,
        0,
      );
    }
    window.rssMbMax[p.name] = round(p.rssMbMax, 1);
    if (after[p.name]) window.rssMbEnd[p.name] = round(after[p.name].rssMb, 1);
  }
  for (const p of processes) {
    const samples = await lab.scrape(p).catch(() => []);
    const p99 = samples.find((s) => s.name === 'nodejs_eventloop_lag_p99_seconds');
    if (p99) window.eventLoopDelayP99Ms[p.name] = round(p99.value * 1000, 1);
    const total = (name: string): number =>
      samples.filter((s) => s.name === name).reduce((sum, s) => sum + s.value, 0);
    const mb = (name: string): number => round(total(name) / 1048576, 1);
    if (samples.length > 0) {
      window.memoryMbAtEnd[p.name] = {
        rss: mb('process_resident_memory_bytes'),
        heapUsed: mb('nodejs_heap_size_used_bytes'),
        heapTotal: mb('nodejs_heap_size_total_bytes'),
        external: mb('nodejs_external_memory_bytes'),
      };
    }
    window.shedCounted += total('kvchat_turns_shed_total');
    window.abandonedInQueueCounted += total('kvchat_turns_abandoned_in_queue_total');
  }
  return window;
}

/**
 * Requests the engine simulator has served so far by route (its `http_requests_total`, the series vLLM's
 * HTTP server exports), every status; its scrapes and health checks left out.
 */
async function engineRequestsByRoute(lab: LoadLab): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const p of lab.processes.filter((q) => q.role === 'simulator'))
    for (const s of await lab.scrape(p).catch(() => []))
      if (s.name === 'http_requests_total' && !['/metrics', '/health'].includes(s.labels.handler))
        out[s.labels.handler] = (out[s.labels.handler] ?? 0) + s.value;
  return out;
}

/** Largest value; NaN for an empty list. */
function maxOf(values: number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => Math.max(a, b), -Infinity);
}

/** Counts by `status code` ("503 Overloaded", "0 ClientGaveUp"). */
function byStatus(samples: Sample[], outcome: Sample['outcome']): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples.filter((x) => x.outcome === outcome)) {
    const key = `${s.status}${s.code ? ` ${s.code}` : ''}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

/** Count, p50, p99 and max of `firstAnswerMs` by outcome (a shed turn by its reason). */
function firstAnswerFigures(
  samples: Sample[],
): Record<string, { n: number; p50: number; p99: number; max: number }> {
  const groups = new Map<string, number[]>();
  for (const s of samples) {
    if (s.firstAnswerMs === undefined) continue;
    const key = s.outcome === 'shed' ? `shed ${s.reason ?? '?'}` : s.outcome;
    const group = groups.get(key) ?? [];
    group.push(s.firstAnswerMs);
    groups.set(key, group);
  }
  return Object.fromEntries(
    [...groups].map(([key, xs]) => [
      key,
      {
        n: xs.length,
        p50: round(quantile(xs, 0.5), 1),
        p99: round(quantile(xs, 0.99), 1),
        max: round(maxOf(xs), 1),
      },
    ]),
  );
}

interface LatencyFigures {
  ttftP50Ms: number;
  ttftP99Ms: number;
  addedTtftP50Ms: number;
  addedTtftP99Ms: number;
}

function latencySummary(samples: Sample[]): LatencyFigures {
  const ok = samples.filter((s) => s.outcome === 'ok');
  const ttft = ok.map((s) => s.ttftMs).filter((x): x is number => x !== undefined);
  const added = ok
    .filter((s) => s.ttftMs !== undefined && s.engineTtftMs !== undefined)
    .map((s) => (s.ttftMs ?? 0) - (s.engineTtftMs ?? 0));
  return {
    ttftP50Ms: round(quantile(ttft, 0.5), 1),
    ttftP99Ms: round(quantile(ttft, 0.99), 1),
    addedTtftP50Ms: round(quantile(added, 0.5), 1),
    addedTtftP99Ms: round(quantile(added, 0.99), 1),
  };
}

/** Creates `n` conversations, 64 at a time; returns their ids. */
async function createConversations(client: Client, lab: LoadLab, n: number): Promise<string[]> {
  const limit = pLimit(64);
  const targets = lab.entrypoints;
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      limit(async () => {
        const res = await request(`${targets[i % targets.length].url}/v1/conversations`, {
          method: 'POST',
          dispatcher: client.dispatcher,
          headers: { authorization: `Bearer ${lab.apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ title: `load user ${i}` }),
        });
        const body = (await res.body.json()) as { id?: string };
        if (res.statusCode !== 201 || !body.id) throw new Error(`creating a conversation: ${res.statusCode}`);
        return body.id;
      }),
    ),
  );
}

/** Tags of user messages that were answered and stored (an assistant message right after them). */
async function answeredTags(lab: LoadLab, runTag: string): Promise<Set<string>> {
  const rows = await lab.query<{ tag: string }>(
    `select substring(u.content from '\\[${runTag}:[0-9]+:[0-9]+\\]') as tag from messages u ` +
      `join messages a on a.conversation_id = u.conversation_id and a.sequence = u.sequence + 1 and a.role = 'assistant' ` +
      `where u.role = 'user' and u.content like '[${runTag}:%'`,
  );
  return new Set(rows.map((r) => r.tag));
}

async function runTurns(opts: Options, lab: LoadLab, client: Client): Promise<Record<string, unknown>> {
  const questions = await loadQuestions(opts.data);
  const random = mulberry32(opts.seed);
  const users = opts.burst ?? opts.users;
  // Booted and idle: no turn has run yet (the local sentence model is loaded at boot, the rest lazily).
  const atBoot = lab.snapshot();
  const rssAtBoot: Record<string, number> = Object.fromEntries(
    lab.apis.map((p) => [p.name, round(atBoot[p.name]?.rssMb ?? NaN, 1)]),
  );
  process.stdout.write(`${new Date().toISOString()} creating ${users} conversations...\n`);
  const conversations = await createConversations(client, lab, users);
  const runTag = `load${randomBytes(3).toString('hex')}`;
  const samples: Sample[] = [];
  const apis = lab.apis;
  // Turns go round-robin over the api processes, as a load balancer spreads them, or through the proxy.
  const targets = lab.entrypoints;
  let next = 0;
  let turnCounter = 0;
  const giveUpMs = opts.giveUpSeconds * 1000;
  const planTurn = (user: number): PlannedTurn => {
    const t = turnCounter++;
    const tag = `[${runTag}:${user}:${t}]`;
    const question = questions[Math.floor(random() * questions.length)];
    const target = targets[next++ % targets.length];
    return { url: target.url, conversationId: conversations[user], content: `${tag} ${question}`, tag };
  };
  const postTurn = async (user: number): Promise<void> => {
    const turn = planTurn(user);
    samples.push(
      await client.turn(
        turn.url,
        lab.apiKey,
        turn.conversationId,
        turn.content,
        turn.tag,
        opts.maxTokens,
        giveUpMs,
      ),
    );
  };

  // Warm-up, outside the measured window: a fresh process compiles its hot paths and loads its local
  // embedding model on the first turns; a long-running replica has done that long ago.
  if (opts.warmupTurns > 0) {
    const spare = await createConversations(client, lab, apis.length);
    for (let i = 0; i < opts.warmupTurns; i++) {
      const target = targets[i % targets.length];
      await client.turn(
        target.url,
        lab.apiKey,
        spare[i % spare.length],
        `warm-up ${i}`,
        '',
        opts.maxTokens,
        giveUpMs,
      );
    }
  }
  await sleep(2000);
  const idle = lab.snapshot();
  const rssBefore: Record<string, number> = Object.fromEntries(
    lab.apis.map((p) => [p.name, round(idle[p.name]?.rssMb ?? NaN, 1)]),
  );
  for (const p of lab.processes) p.rssMbMax = idle[p.name]?.rssMb ?? 0;
  // A burst from several client threads: each opens its share of the connections on its own event loop,
  // so the client's connection setup is spread over the machine's cores instead of one loop.
  const burstThreads: Worker[] = [];
  if (opts.burst && opts.clientThreads > 1) {
    const shares: PlannedTurn[][] = Array.from({ length: opts.clientThreads }, () => []);
    conversations.forEach((_, user) => shares[user % opts.clientThreads].push(planTurn(user)));
    for (const turns of shares) {
      const work: BurstWork = { apiKey: lab.apiKey, maxTokens: opts.maxTokens, giveUpMs, turns };
      const w = new Worker(join(__dirname, 'load-burst-worker.js'), { workerData: work });
      await new Promise<void>((ready, failed) => {
        w.once('message', () => ready());
        w.once('error', failed);
      });
      burstThreads.push(w);
    }
  }
  await resetEventLoopHistograms(lab, apis);
  const engineRequests0 = await engineRequestsByRoute(lab);
  const before = lab.snapshot();
  const machine0 = readMachine();
  const load0 = loadavg();
  const t0 = Date.now();
  const deadline = t0 + opts.durationSeconds * 1000;
  let clientSaturated = 0;
  process.stdout.write(
    `${new Date().toISOString()} running ${opts.burst ? `a burst of ${opts.burst}` : `${users} users`}...\n`,
  );

  if (opts.burst && burstThreads.length > 0) {
    // Every thread is ready (its share planned, its module loaded): all start at once.
    const results = burstThreads.map(
      (w) => new Promise<Sample[]>((done) => w.once('message', (m: Sample[]) => done(m))),
    );
    for (const w of burstThreads) w.postMessage('go');
    for (const r of await Promise.all(results)) samples.push(...r);
    await Promise.all(burstThreads.map((w) => w.terminate()));
  } else if (opts.burst) {
    await Promise.all(conversations.map((_, user) => postTurn(user)));
  } else if (opts.rate) {
    const idleUsers = conversations.map((_, i) => i);
    const inFlight: Promise<void>[] = [];
    let at = t0;
    while (at < deadline) {
      at += exponential(random, 1000 / opts.rate);
      const wait = at - Date.now();
      if (wait > 0) await sleep(wait);
      const user = idleUsers.shift();
      if (user === undefined) {
        clientSaturated++;
        continue;
      }
      inFlight.push(postTurn(user).then(() => void idleUsers.push(user)));
    }
    await Promise.all(inFlight);
  } else {
    await Promise.all(
      conversations.map(async (_, user) => {
        for (;;) {
          // A think time that ends past the deadline ends the user (no sleeping past the run).
          const think = exponential(random, opts.thinkSeconds * 1000);
          if (Date.now() + think >= deadline) return;
          await sleep(think);
          await postTurn(user);
        }
      }),
    );
  }
  const measuredSeconds = opts.burst
    ? (Date.now() - t0) / 1000
    : Math.max(opts.durationSeconds, (Date.now() - t0) / 1000);
  const machine = machineWindow(machine0, readMachine(), machineNames(lab));
  const window = await closeWindow(lab, apis, before);
  const engineRequests1 = await engineRequestsByRoute(lab);
  const load1 = loadavg();

  let rssAfterSettle: Record<string, number> | undefined;
  if (opts.burst) {
    process.stdout.write(`${new Date().toISOString()} settling ${opts.settleSeconds} s...\n`);
    await sleep(opts.settleSeconds * 1000);
    const settled = lab.snapshot();
    rssAfterSettle = Object.fromEntries(apis.map((p) => [p.name, round(settled[p.name]?.rssMb ?? NaN, 1)]));
  } else {
    // Turns whose clients gave up may still be finishing inside kvchat: give them the give-up time to land.
    await sleep(Math.min(giveUpMs, 10_000));
  }
  const answered = await answeredTags(lab, runTag);
  const abandoned = samples.filter((s) => s.outcome === 'abandoned');
  const storedAbandoned = abandoned.filter((s) => s.tag && answered.has(s.tag));
  const storedAfterAbandon = storedAbandoned.length;

  const ok = samples.filter((s) => s.outcome === 'ok');
  const apiCpuMs = apis.reduce((sum, p) => sum + (window.cpuMs[p.name] ?? 0), 0);
  const apiMainThreadCpuMs = apis.reduce((sum, p) => sum + (window.mainThreadCpuMs[p.name] ?? 0), 0);
  const answeredOrShed = samples
    .filter((s) => s.firstAnswerMs !== undefined)
    .map((s) => s.firstAnswerMs ?? 0);
  const summary = {
    users,
    turnsPerSecondOffered: round(samples.length / measuredSeconds, 2),
    turnsPerSecondServed: round(ok.length / measuredSeconds, 2),
    errors: samples.filter((s) => s.outcome === 'error').length,
    shed: samples.filter((s) => s.outcome === 'shed').length,
    ...latencySummary(samples),
    cpuMsPerTurn: round(apiCpuMs / Math.max(1, ok.length), 2),
    rssMbMax: round(Math.max(...apis.map((p) => window.rssMbMax[p.name] ?? 0)), 1),
    eventLoopDelayP99Ms: round(maxOf(Object.values(window.eventLoopDelayP99Ms)), 1),
    storedAfterAbandon,
  };
  return {
    summary,
    details: {
      mode: opts.burst ? 'burst' : opts.rate ? 'open-loop' : 'closed-loop',
      apiProcesses: apis.length,
      proxy: lab.proxy ? 'nginx (docker/nginx.conf)' : null,
      measuredSeconds: round(measuredSeconds, 1),
      turnsStarted: samples.length,
      turnsServed: ok.length,
      abandoned: abandoned.length,
      clientSaturated,
      errorsByStatus: byStatus(samples, 'error'),
      shedByStatus: byStatus(samples, 'shed'),
      abandonedByStatus: byStatus(samples, 'abandoned'),
      shedCountedByServers: window.shedCounted,
      abandonedInQueueCountedByServers: window.abandonedInQueueCounted,
      // Of the turns stored after their client gave up: how many had streamed a first token by then
      // (the client left during the answer or the final write) and how many had not.
      storedAfterAbandonWithFirstToken: storedAbandoned.filter((s) => s.ttftMs !== undefined).length,
      answeredOrShedP99Ms: round(quantile(answeredOrShed, 0.99), 1),
      answeredOrShedMaxMs: round(maxOf(answeredOrShed), 1),
      answeredOrShedWithin2s: answeredOrShed.filter((x) => x <= 2000).length,
      // How long each kind of answer took (request sent → first token, or → the whole refusal), ms.
      firstAnswerMsByOutcome: firstAnswerFigures(samples),
      cpuMsByProcess: window.cpuMs,
      cpuMsPerTurnByRole: {
        api: round(apiCpuMs / Math.max(1, ok.length), 2),
        // The event loop alone (the rest of the api's CPU is its worker threads: the local sentence model).
        apiMainThread: round(apiMainThreadCpuMs / Math.max(1, ok.length), 2),
        worker: round((window.cpuMs.worker ?? 0) / Math.max(1, ok.length), 2),
        simulator: round((window.cpuMs.simulator ?? 0) / Math.max(1, ok.length), 2),
        ...(lab.proxy ? { proxy: round((window.cpuMs.nginx ?? 0) / Math.max(1, ok.length), 2) } : {}),
      },
      rssMbMaxByProcess: window.rssMbMax,
      memoryMbAtEndByProcess: window.memoryMbAtEnd,
      rssMbAtBoot: rssAtBoot,
      rssMbBefore: rssBefore,
      ...(rssAfterSettle ? { rssMbAfterSettle: rssAfterSettle, settleSeconds: opts.settleSeconds } : {}),
      eventLoopDelayP99MsByProcess: window.eventLoopDelayP99Ms,
      loadAverage: { start: load0.map((x) => round(x, 2)), end: load1.map((x) => round(x, 2)) },
      benchClientCpuMs: round(process.cpuUsage().user / 1000 + process.cpuUsage().system / 1000, 0),
      machineCpu: machineFigures(machine, ok.length),
      engineRequestsPerTurn: Object.fromEntries(
        Object.entries(engineRequests1).map(([route, n]) => [
          route,
          round((n - (engineRequests0[route] ?? 0)) / Math.max(1, ok.length), 2),
        ]),
      ),
    },
  };
}

/** Kernel threads' command names (writeback, softirqs, memory management), reported together. */
const KERNEL_THREAD = /^(kworker|ksoftirqd|kdamond|kswapd|kcompactd|rcu_|migration|jbd2|khugepaged|irq\/)/;

/** The lab's processes by pid under their role (api, worker, simulator, proxy), and this bench as `benchClient`. */
function machineNames(lab: LoadLab): Map<number, string> {
  const names = new Map<number, string>([[process.pid, 'benchClient']]);
  for (const p of lab.processes) if (p.pid) names.set(p.pid, p.role);
  return names;
}

/**
 * The whole machine's CPU over the measured window, per turn served: every process by role or command
 * (postgres, redis-server, nginx's workers...), so kvchat's share reads against everything else the run
 * puts on the same cores (the simulator, the bench's own client, the database). `utilisation`: busy over
 * busy + idle, all cores.
 */
function machineFigures(
  machine: ReturnType<typeof machineWindow>,
  turns: number,
): { cores: number; utilisation: number; busyMsPerTurn: number; msPerTurn: Record<string, number> } {
  const perTurn = (ms: number): number => round(ms / Math.max(1, turns), 2);
  const msPerTurn: Record<string, number> = {};
  let other = 0;
  const grouped: Record<string, number> = {};
  for (const [name, ms] of Object.entries(machine.byName)) {
    const key = KERNEL_THREAD.test(name) ? 'kernel threads' : name;
    grouped[key] = (grouped[key] ?? 0) + ms;
  }
  for (const [name, ms] of Object.entries(grouped).sort((a, b) => b[1] - a[1])) {
    if (perTurn(ms) >= 0.05) msPerTurn[name] = perTurn(ms);
    else other += ms;
  }
  if (other > 0) msPerTurn.other = perTurn(other);
  return {
    cores: availableParallelism(),
    utilisation: round(machine.busyMs / Math.max(1, machine.busyMs + machine.idleMs), 3),
    busyMsPerTurn: perTurn(machine.busyMs),
    msPerTurn,
  };
}

/** `max_tokens` of `--repeat-prompts` requests: above the simulator's longest reply (128 tokens by default). */
const REPEATED_MAX_TOKENS = 256;

/**
 * The stateless endpoint under the same closed-loop load: simulator direct, kvchat, Portkey (when installed).
 * With `--repeat-prompts N`, kvchat alone (response cache on) on N fixed one-message prompts, each answered
 * once before the measured window so that every measured request is an exact response-cache hit.
 */
async function runCompletions(opts: Options, lab: LoadLab, client: Client): Promise<Record<string, unknown>> {
  const repeated = opts.repeatPrompts !== undefined;
  // Only complete answers (finish_reason `stop`) are cached: the simulator's replies are 64-128 tokens.
  const maxTokens = repeated ? Math.max(opts.maxTokens, REPEATED_MAX_TOKENS) : opts.maxTokens;
  const questions = (await loadQuestions(opts.data)).slice(0, repeated ? opts.repeatPrompts : undefined);
  const models = (await (await request(`${lab.simUrl}/v1/models`)).body.json()) as { data: { id: string }[] };
  const model = models.data[0].id;
  const targets: { name: string; url: string; headers: Record<string, string>; process?: LabProcess }[] = [
    { name: 'simulator', url: `${lab.simUrl}/v1/chat/completions`, headers: {} },
    {
      name: 'kvchat',
      url: `${lab.apis[0].url}/v1/chat/completions`,
      headers: { authorization: `Bearer ${lab.apiKey}` },
      process: lab.apis[0],
    },
  ];
  const gateway = lab.gateway;
  if (repeated) {
    // Exact hits: kvchat only (the simulator and Portkey have no response cache to compare).
    targets.splice(0, 1);
    await storeRepeatedPrompts(client, targets[0], model, questions, maxTokens, opts);
  } else if (gateway)
    targets.push({
      name: 'portkey',
      url: `${gateway.url}/v1/chat/completions`,
      headers: {
        authorization: 'Bearer sk-simulator',
        'x-portkey-provider': 'openai',
        'x-portkey-custom-host': `${lab.simUrl}/v1`,
      },
      process: gateway,
    });
  const results: Record<string, unknown> = {};
  const summary: Record<string, unknown> = { users: opts.users };
  for (const target of targets) {
    const random = mulberry32(opts.seed);
    const samples: Sample[] = [];
    const histories: { role: string; content: string }[][] = Array.from({ length: opts.users }, () => []);
    const before = lab.snapshot();
    const load0 = loadavg();
    const t0 = Date.now();
    const deadline = t0 + opts.durationSeconds * 1000;
    process.stdout.write(`completions → ${target.name}...\n`);
    await Promise.all(
      histories.map(async (history, user) => {
        for (let turn = 0; ; turn++) {
          const think = exponential(random, opts.thinkSeconds * 1000);
          if (Date.now() + think >= deadline) return;
          await sleep(think);
          const pick = questions[Math.floor(random() * questions.length)];
          const question = repeated ? pick : `${pick} (user ${user}, turn ${turn}, ${target.name})`;
          const messages = repeated
            ? [{ role: 'user', content: question }]
            : [...history.slice(-8), { role: 'user', content: question }];
          const sample = await client.chat(
            target.name,
            target.url,
            target.headers,
            { model, messages, max_tokens: maxTokens },
            opts.giveUpSeconds * 1000,
            opts.stream,
          );
          samples.push(sample);
          history.push({ role: 'user', content: question }, { role: 'assistant', content: 'answer' });
        }
      }),
    );
    const seconds = Math.max(opts.durationSeconds, (Date.now() - t0) / 1000);
    const after = lab.snapshot();
    const ok = samples.filter((s) => s.outcome === 'ok');
    const cpu = (name: string): number => (after[name]?.cpuMs ?? 0) - (before[name]?.cpuMs ?? 0);
    const gatewayCpu = target.process ? cpu(target.process.name) : 0;
    const name = target.process?.name;
    const gatewayMainThreadCpu = name
      ? (after[name]?.mainThreadCpuMs ?? 0) - (before[name]?.mainThreadCpuMs ?? 0)
      : 0;
    const figures = {
      requestsPerSecondServed: round(ok.length / seconds, 2),
      errors: samples.filter((s) => s.outcome !== 'ok').length,
      ...latencySummary(samples),
      gatewayCpuMsPerRequest: round(gatewayCpu / Math.max(1, ok.length), 3),
      gatewayMainThreadCpuMsPerRequest: round(gatewayMainThreadCpu / Math.max(1, ok.length), 3),
      ...(repeated ? { exactHits: ok.filter((s) => s.cache === 'hit-exact').length } : {}),
      simulatorCpuMsPerRequest: round(cpu('simulator') / Math.max(1, ok.length), 3),
      errorsByStatus: byStatus(samples, 'error'),
      loadAverage: { start: load0.map((x) => round(x, 2)), end: loadavg().map((x) => round(x, 2)) },
    };
    results[target.name] = figures;
    if (target.process) {
      summary[`${target.name}CpuMsPerRequest`] = figures.gatewayCpuMsPerRequest;
      summary[`${target.name}MainThreadCpuMsPerRequest`] = figures.gatewayMainThreadCpuMsPerRequest;
    }
    if (figures.exactHits !== undefined) summary[`${target.name}ExactHits`] = figures.exactHits;
    summary[`${target.name}RequestsPerSecond`] = figures.requestsPerSecondServed;
    summary[`${target.name}TtftP99Ms`] = figures.ttftP99Ms;
  }
  return {
    summary,
    details: { mode: repeated ? 'completions, exact hits' : 'completions', targets: results },
  };
}

/**
 * Answers each of `questions` once through `target` (kvchat) and waits until a repeat of each is an exact
 * response-cache hit (the entry is stored after the answer is sent), so the measured window only hits.
 * @throws when a prompt is not an exact hit after 20 attempts (the response cache is off, or the answer was
 * not cacheable)
 */
async function storeRepeatedPrompts(
  client: Client,
  target: { name: string; url: string; headers: Record<string, string> },
  model: string,
  questions: string[],
  maxTokens: number,
  opts: Options,
): Promise<void> {
  for (const question of questions) {
    for (let attempt = 0; ; attempt++) {
      const sample = await client.chat(
        target.name,
        target.url,
        target.headers,
        { model, messages: [{ role: 'user', content: question }], max_tokens: maxTokens },
        opts.giveUpSeconds * 1000,
        opts.stream,
      );
      if (sample.cache === 'hit-exact') break;
      if (attempt >= 20)
        throw new Error(
          `--repeat-prompts: "${question}" is not an exact hit (x-kvchat-cache: ${sample.cache})`,
        );
      await sleep(100);
    }
  }
}

async function main(): Promise<void> {
  const program = new Command('bench:load')
    .description(
      'Simulated users against K kvchat api processes, a worker and the engine simulator on an external PostgreSQL; ' +
        'prints throughput, shedding, TTFT, CPU per turn, RSS and event-loop delay, and writes a JSON report.',
    )
    .option('--users <n>', 'concurrent users (each holds a conversation)', count, 100)
    .option('--think-seconds <s>', 'mean of the exponential think time between a user’s turns', positive, 60)
    .option('--duration-seconds <s>', 'how long users start turns', positive, 60)
    .option('--api-processes <k>', 'kvchat api processes (KVCHAT_ROLE=api)', count, 1)
    .option('--burst <n>', 'instead of users: n turns at once on n conversations', count)
    .option('--rate <r>', 'instead of think times: an open loop of r turns/s (Poisson)', positive)
    .option(
      '--database-url <url>',
      'external PostgreSQL (default: a fresh kvchat_load_<pid> on 127.0.0.1:5432)',
    )
    .option('--redis-url <url>', 'Redis (a fresh key prefix is used and removed)', 'redis://127.0.0.1:6379')
    .option(
      '--mode <mode>',
      'turns (stateful, streamed) or completions (stateless /v1/chat/completions)',
      'turns',
    )
    .option('--portkey-dir <dir>', 'completions mode: a directory with @portkey-ai/gateway installed')
    .option('--max-tokens <n>', 'answer length, tokens', count, 32)
    .option('--give-up-seconds <s>', 'a client abandons a turn after this long', positive, 30)
    .option('--settle-seconds <s>', 'burst: wait this long before reading RSS again', positive, 60)
    .option(
      '--client-threads <n>',
      "burst: post the turns from n client threads (worker_threads), each with its own event loop and connections, so one loop's connection setup does not pace the burst",
      count,
      1,
    )
    .option('--time-scale <x>', 'simulator time scale (1 = calibrated real time)', positive, 1)
    .option('--connections <n>', 'client connections per api process', count, 1024)
    .option('--api-env <KEY=VALUE...>', 'extra environment of the api processes', [])
    .option(
      '--nginx <binary>',
      'turns mode: clients talk to this nginx, configured by docker/nginx.conf, in front of the api processes',
    )
    .option('--cpu-prof <dir>', 'write a V8 CPU profile of the first api process into this directory')
    .option('--data <jsonl>', 'user messages from dialogues, one {messages:[{role,content}]} per line')
    .option('--seed <n>', 'seed of think times and message picks', count, 1)
    .option(
      '--warmup-turns <n>',
      'turns before the measured window (spread over the api processes)',
      count,
      20,
    )
    .option(
      '--stream',
      'completions mode: streamed requests (Portkey 1.15.2 on Node fails them: its streamed responses keep fetch’s immutable headers)',
      false,
    )
    .option(
      '--repeat-prompts <n>',
      'completions mode: kvchat alone with the response cache on, on n fixed prompts answered once beforehand (every measured request an exact hit)',
      count,
    )
    .requiredOption('--out <json>', 'report path')
    .parse();
  const opts = program.opts<Options>();
  if (opts.mode !== 'turns' && opts.mode !== 'completions')
    throw new Error('--mode must be turns or completions');
  if (opts.repeatPrompts !== undefined && (opts.mode !== 'completions' || opts.repeatPrompts < 1))
    throw new Error('--repeat-prompts needs --mode completions and n ≥ 1');
  const apiEnv = Object.fromEntries(
    opts.apiEnv.map((kv) => {
      const i = kv.indexOf('=');
      if (i <= 0) throw new Error(`--api-env ${kv}: expected KEY=VALUE`);
      return [kv.slice(0, i), kv.slice(i + 1)];
    }),
  );
  const lab = new LoadLab({
    distDir: resolve(__dirname, '..'),
    databaseUrl: opts.databaseUrl,
    redisUrl: opts.redisUrl,
    apiProcesses: Math.max(1, opts.apiProcesses),
    apiEnv: { RESPONSE_CACHE_ENABLED: opts.repeatPrompts !== undefined ? 'true' : 'false', ...apiEnv },
    firstApiNodeFlags: opts.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', resolve(opts.cpuProf)] : [],
    simulatorArgs: ['--time-scale', String(opts.timeScale), '--max-num-seqs', '1024'],
    portkeyDir: opts.mode === 'completions' && opts.repeatPrompts === undefined ? opts.portkeyDir : undefined,
    nginxBinary: opts.nginx,
  });
  // A burst opens one connection per turn, as that many clients would (the client must not queue them itself).
  const client = new Client(Math.max(opts.connections, opts.burst ?? 0));
  // Stopped from outside (Ctrl-C, a timeout): stop the processes the lab started and drop its database.
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => {
      process.stderr.write(`bench:load: ${signal}, stopping the lab\n`);
      void lab.close().finally(() => process.exit(130));
    });
  let report: Record<string, unknown>;
  try {
    await lab.start();
    report =
      opts.mode === 'completions'
        ? await runCompletions(opts, lab, client)
        : await runTurns(opts, lab, client);
  } catch (e) {
    process.stderr.write(`bench:load failed; process logs in ${lab.dir}\n`);
    throw e;
  } finally {
    await client.close();
    await lab.close();
  }
  const full = { ...report, options: { ...opts, apiEnv }, createdAt: new Date().toISOString() };
  mkdirSync(dirname(resolve(opts.out)), { recursive: true });
  writeFileSync(resolve(opts.out), `${JSON.stringify(full, null, 2)}\n`);
  process.stdout.write(`\n${JSON.stringify(report.summary, null, 2)}\n`);
  const details = report.details as Record<string, unknown>;
  if (details.loadAverage) process.stdout.write(`load average: ${JSON.stringify(details.loadAverage)}\n`);
  process.stdout.write(`report: ${join(resolve(opts.out))}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
