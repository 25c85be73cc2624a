import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Command } from 'commander';
import { request } from 'undici';
import { ChaosLab, sleep } from './chaos-lab';

/**
 * `npm run bench:chaos -- [--conversations 8] [--outage-seconds 5] [--client-timeout-seconds 60]
 *   [--scenarios engine-kill,redis-stop,postgres-stop,sigterm-streams,sigkill-load] [--out FILE]`
 *
 * Issue 10, item 8. Starts its own Redis and PostgreSQL (free ports, temp dirs), the engine simulator
 * and kvchat as child processes against them, then for each scenario drives a bounded load of
 * concurrent conversations (each posts turns one after another, JSON and SSE alternately, with a
 * client timeout), breaks one thing, repairs it, stops the load, waits for every request to end, and
 * audits the database. Per scenario (`summary.scenarios[]`):
 * - `attempted`: turns the clients posted.
 * - `reportedOk`: turns the client was told were answered and stored (201, or the SSE `turn` event).
 * - `stored`: attempted turns stored whole: the user message `complete` and an assistant answer right after it.
 * - `lost`: reported ok but not stored.
 * - `duplicated`: extra stored copies of a user message (every content is unique, so any copy beyond
 *   the first is a turn run twice).
 * - `orphaned`: user messages of the scenario with no answer after them and not `failed` (a prompt
 *   would include them as if answered).
 * - `storedReportedFailed`: stored whole, yet the client got an error or no answer (an untruthful report).
 * - `interrupted`: user messages stored `failed` because their turn was stopped (reason `interrupted`:
 *   swept after a crash; `shutdown`: the drain time ran out; `deadline`): kept, not lost, not in prompts.
 * - `leftInFlight`: turns still recorded as running in Redis at the audit (after waiting for the sweeper).
 * - `maxWaitPastOutageMs`: longest a request that started before the end of the outage waited past that
 *   end (the end = the broken component is back: restarted, or kvchat live again), ms.
 * sigkill-load also reports the turn locks the killed process held (nothing released them):
 * - `locksHeldAtKill`: conversations whose turn lock was held right after the kill.
 * - `locksLapsedAfterKillMs`: when the last of them was gone (its lease lapsed, TURN_LOCK_LEASE_MS), ms after
 *   the kill (polled every 100 ms).
 * - `nextTurnAfterKillMaxMs`: on the conversations that had a turn running at the kill, the longest the next
 *   turn that got a response took (posted to the restarted kvchat: it waits for the lock if it is still held), ms;
 *   `nextTurnAfterKillOk`: how many of those next turns were answered, out of how many.
 */
const program = new Command()
  .option('--conversations <n>', 'concurrent conversations of the load', '8')
  .option('--outage-seconds <s>', 'how long a component stays down', '5')
  .option('--client-timeout-seconds <s>', 'a client gives up on a turn after this long', '60')
  .option(
    '--scenarios <list>',
    'comma-separated scenarios',
    'engine-kill,redis-stop,postgres-stop,sigterm-streams,sigkill-load',
  )
  .option('--out <file>', 'JSON report', 'bench/reports/chaos.json')
  .parse();
const opts = program.opts<{
  conversations: string;
  outageSeconds: string;
  clientTimeoutSeconds: string;
  scenarios: string;
  out: string;
}>();
const CONVERSATIONS = Number(opts.conversations);
const OUTAGE_MS = Number(opts.outageSeconds) * 1000;
const CLIENT_TIMEOUT_MS = Number(opts.clientTimeoutSeconds) * 1000;

/** One turn as a client saw it. */
interface Attempt {
  conversationId: string;
  content: string;
  streamed: boolean;
  startedAt: number;
  endedAt: number;
  /** HTTP status; 0 = no response (connection refused or reset, client timeout). */
  status: number;
  /** Told it was answered and stored: 201, or an SSE `turn` event. */
  ok: boolean;
  error?: string;
}

/** One scenario's figures (see the file docstring for each count's definition). */
export interface ChaosScenarioReport {
  name: string;
  attempted: number;
  reportedOk: number;
  stored: number;
  lost: number;
  duplicated: number;
  orphaned: number;
  storedReportedFailed: number;
  interrupted: number;
  leftInFlight: number;
  maxWaitPastOutageMs: number;
  locksHeldAtKill?: number;
  locksLapsedAfterKillMs?: number;
  nextTurnAfterKillMaxMs?: number;
  nextTurnAfterKillOk?: string;
  /** Client-side outcomes by status (`0` = no response). */
  byStatus: Record<string, number>;
  notes: string[];
}

/** Posts one turn, as JSON or SSE, and reports what the client saw. */
async function postTurn(
  lab: ChaosLab,
  conversationId: string,
  content: string,
  streamed: boolean,
): Promise<Attempt> {
  const startedAt = Date.now();
  const attempt: Attempt = { conversationId, content, streamed, startedAt, endedAt: 0, status: 0, ok: false };
  try {
    const res = await request(`${lab.appUrl}/v1/conversations/${conversationId}/turns`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${lab.apiKey}`,
        'content-type': 'application/json',
        ...(streamed ? { accept: 'text/event-stream' } : {}),
      },
      body: JSON.stringify({ content, maxTokens: 64 }),
      headersTimeout: CLIENT_TIMEOUT_MS,
      bodyTimeout: CLIENT_TIMEOUT_MS,
      signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
    });
    attempt.status = res.statusCode;
    const text = await res.body.text();
    attempt.ok = streamed ? res.statusCode === 200 && /^event: turn$/m.test(text) : res.statusCode === 201;
    if (!attempt.ok) attempt.error = text.slice(0, 200);
  } catch (e) {
    attempt.error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  }
  attempt.endedAt = Date.now();
  return attempt;
}

/** Creates a conversation titled `tag`, retrying while kvchat is unreachable (for at most 3 minutes). */
async function createConversation(lab: ChaosLab, tag: string): Promise<string> {
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    try {
      const res = await request(`${lab.appUrl}/v1/conversations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${lab.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ title: tag }),
      });
      const body = (await res.body.json()) as { id?: string };
      if (res.statusCode === 201 && body.id) return body.id;
    } catch {
      // kvchat is restarting: try again
    }
    await sleep(200);
  }
  throw new Error('could not create a conversation');
}

/** A running load: `conversations` clients posting turns one after another until stopped. */
function startLoad(
  lab: ChaosLab,
  tag: string,
  conversations: number,
): { stop(): Promise<Attempt[]>; warm(): Promise<void> } {
  const attempts: Attempt[] = [];
  let running = true;
  const clients = Array.from({ length: conversations }, async (_, c) => {
    // A client that cannot even create its conversation posts no turn (and must not crash the run).
    const conversationId = await createConversation(lab, tag).catch(() => null);
    for (let t = 0; running && conversationId; t++) {
      const attempt = await postTurn(lab, conversationId, `${tag} c${c} t${t} ${randomUUID()}`, c % 2 === 1);
      attempts.push(attempt);
      // After a refused connection, do not spin: a real client backs off too.
      if (attempt.status === 0 || attempt.status >= 500) await sleep(250);
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(clients);
      return attempts;
    },
    // Steady state: as many answered turns as conversations (so turns are in flight when the fault hits),
    // or 60 s, whichever comes first.
    warm: async () => {
      const deadline = Date.now() + 60_000;
      while (attempts.filter((a) => a.ok).length < conversations && Date.now() < deadline) await sleep(100);
    },
  };
}

/** Audits the database for the attempts of one scenario (conversations titled `tag`). */
async function audit(
  lab: ChaosLab,
  name: string,
  tag: string,
  attempts: Attempt[],
  outageEnd: number,
  notes: string[],
): Promise<ChaosScenarioReport> {
  // Turns left in flight (their process died) are stored by the sweeper once their deadline passes.
  const sweepDeadline = Date.now() + 60_000;
  let leftInFlight = await lab.inFlightTurns();
  while (leftInFlight !== 0 && Date.now() < sweepDeadline) {
    await sleep(500);
    leftInFlight = await lab.inFlightTurns();
  }
  const rows = await lab.query<{
    c: string;
    s: number;
    r: string;
    st: string;
    x: string;
    why: string | null;
  }>(
    `select m.conversation_id as c, m.sequence as s, m.role as r, m.status as st, m.content as x,
            m.error ->> 'reason' as why
       from messages m join conversations v on v.id = m.conversation_id
      where v.title = '${tag}' order by 1, 2`,
  );
  const bySeq = new Map(rows.map((r) => [`${r.c}:${r.s}`, r]));
  const answered = (r: { c: string; s: number }): boolean =>
    bySeq.get(`${r.c}:${r.s + 1}`)?.r === 'assistant';
  const userRows = rows.filter((r) => r.r === 'user');
  const copies = new Map<string, typeof userRows>();
  for (const r of userRows) copies.set(r.x, [...(copies.get(r.x) ?? []), r]);
  const isStored = (content: string): boolean =>
    (copies.get(content) ?? []).some((r) => r.st === 'complete' && answered(r));

  const stored = attempts.filter((a) => isStored(a.content));
  const byStatus: Record<string, number> = {};
  for (const a of attempts) byStatus[String(a.status)] = (byStatus[String(a.status)] ?? 0) + 1;
  const waits = attempts.filter((a) => a.startedAt < outageEnd).map((a) => a.endedAt - outageEnd);
  return {
    name,
    attempted: attempts.length,
    reportedOk: attempts.filter((a) => a.ok).length,
    stored: stored.length,
    lost: attempts.filter((a) => a.ok && !isStored(a.content)).length,
    duplicated: [...copies.values()].reduce((n, list) => n + Math.max(0, list.length - 1), 0),
    orphaned: userRows.filter((r) => r.st !== 'failed' && !answered(r)).length,
    storedReportedFailed: stored.filter((a) => !a.ok).length,
    interrupted: userRows.filter((r) => r.st === 'failed' && r.why !== null).length,
    leftInFlight,
    maxWaitPastOutageMs: Math.max(0, ...waits),
    byStatus,
    notes,
  };
}

type Scenario = (
  lab: ChaosLab,
  tag: string,
) => Promise<{
  attempts: Attempt[];
  outageEnd: number;
  notes: string[];
  extra?: Partial<ChaosScenarioReport>;
}>;

/**
 * Load until steady, then `breakIt`, `OUTAGE_MS` later `repair`, then 5 s more load; the outage ends when
 * `repair` resolves.
 */
function outage(
  breakIt: (lab: ChaosLab) => Promise<void>,
  repair: (lab: ChaosLab) => Promise<void>,
): Scenario {
  return async (lab, tag) => {
    const load = startLoad(lab, tag, CONVERSATIONS);
    await load.warm();
    // Into the next turns: their user messages are stored and the engine is answering them.
    await sleep(2000);
    await breakIt(lab);
    await sleep(OUTAGE_MS);
    await repair(lab);
    const outageEnd = Date.now();
    await sleep(5000);
    return { attempts: await load.stop(), outageEnd, notes: [] };
  };
}

const SCENARIOS: Record<string, Scenario> = {
  'engine-kill': outage(
    (lab) => lab.killSimulator(),
    (lab) => lab.startSimulator(),
  ),
  'redis-stop': outage(
    (lab) => lab.stopRedis(),
    (lab) => lab.startRedis(),
  ),
  'postgres-stop': outage(
    (lab) => lab.stopPostgres(),
    (lab) => lab.startPostgres(),
  ),
  /**
   * 20 open streams while the engine stalls before the first token for longer than a typical 30 s grace
   * period (45 s), then SIGTERM; SIGKILL at the end of the grace period, as an orchestrator does.
   */
  'sigterm-streams': async (lab, tag) => {
    await lab.simulatorFaults({ stallMs: 45_000 });
    const ids = await Promise.all(Array.from({ length: 20 }, () => createConversation(lab, tag)));
    const streams = ids.map((id, i) => postTurn(lab, id, `${tag} c${i} t0 ${randomUUID()}`, true));
    await sleep(1500);
    const stop = await lab.stopApp('SIGTERM', 30_000);
    await lab.simulatorFaults({ stallMs: 0 });
    await lab.startApp();
    const outageEnd = Date.now();
    return {
      attempts: await Promise.all(streams),
      outageEnd,
      notes: [
        `kvchat exited ${stop.exitedMs} ms after SIGTERM${stop.killed ? ' (SIGKILLed after the grace period)' : ''}`,
      ],
    };
  },
  /**
   * SIGKILL mid-load, kvchat restarted OUTAGE_MS later. Nothing releases the turn locks of the turns that
   * were running: measured here are how long those locks outlive the kill and how long the next turn on
   * each of those conversations takes.
   */
  'sigkill-load': async (lab, tag) => {
    const load = startLoad(lab, tag, CONVERSATIONS);
    await load.warm();
    await sleep(2000);
    const killedAt = Date.now();
    await lab.stopApp('SIGKILL');
    const heldAtKill = await lab.turnLocks();
    // A lock is gone when its key is, or holds another turn's token (taken again after the lapse).
    const lapsed = (async () => {
      let left = [...heldAtKill];
      while (left.length > 0 && Date.now() - killedAt < 120_000) {
        await sleep(100);
        const now = await lab.turnLocks();
        left = left.filter(([c, token]) => now.get(c) === token);
      }
      return Date.now() - killedAt;
    })();
    await sleep(OUTAGE_MS);
    await lab.startApp();
    const outageEnd = Date.now();
    await sleep(5000);
    const attempts = await load.stop();
    const locksLapsedAfterKillMs = await lapsed;
    const killed = new Set(
      attempts.filter((a) => a.startedAt <= killedAt && a.endedAt >= killedAt).map((a) => a.conversationId),
    );
    const nextTurns = [...killed].flatMap((c) => {
      const next = attempts
        .filter((a) => a.conversationId === c && a.startedAt > killedAt && a.status !== 0)
        .sort((a, b) => a.startedAt - b.startedAt)[0];
      return next ? [next] : [];
    });
    const lease = process.env.TURN_LOCK_LEASE_MS ?? 'default';
    // What a turn costs on the restarted kvchat with no lock left to wait for: the turns after those.
    const baseline = attempts
      .filter((a) => a.startedAt >= outageEnd && a.ok && !nextTurns.includes(a))
      .map((a) => a.endedAt - a.startedAt)
      .sort((a, b) => a - b);
    return {
      attempts,
      outageEnd,
      notes: [
        `kvchat SIGKILLed with ${killed.size} turns running; TURN_LOCK_LEASE_MS ${lease}; ` +
          `${heldAtKill.size} turn locks held at the kill, all gone ${locksLapsedAfterKillMs} ms after it; ` +
          `kvchat back ${outageEnd - killedAt} ms after it; later turns answered after the restart: ` +
          `${baseline.length}, median ${baseline[baseline.length >> 1] ?? '-'} ms, max ${baseline.at(-1) ?? '-'} ms`,
      ],
      extra: {
        locksHeldAtKill: heldAtKill.size,
        locksLapsedAfterKillMs,
        nextTurnAfterKillMaxMs: Math.max(0, ...nextTurns.map((a) => a.endedAt - a.startedAt)),
        nextTurnAfterKillOk: `${nextTurns.filter((a) => a.ok).length}/${nextTurns.length}`,
      },
    };
  },
};

async function main(): Promise<void> {
  const names = opts.scenarios
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names)
    if (!SCENARIOS[n]) throw new Error(`unknown scenario ${n}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  const lab = new ChaosLab(join(__dirname, '..'));
  const reports: ChaosScenarioReport[] = [];
  const stopOnSignal = (): void => {
    void lab.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  try {
    console.log(`chaos lab in ${lab.dir}`);
    await lab.start();
    console.log(
      `own Redis :${lab.redisPort}, own PostgreSQL :${lab.pgPort}, simulator :${lab.simPort}, kvchat :${lab.appPort}`,
    );
    for (const name of names) {
      const tag = `chaos-${name}-${Date.now()}`;
      console.log(`scenario ${name} ...`);
      const { attempts, outageEnd, notes, extra } = await SCENARIOS[name](lab, tag);
      // Turns still finishing server-side after their client gave up are counted once they are done.
      await sleep(2000);
      const report = { ...(await audit(lab, name, tag, attempts, outageEnd, notes)), ...extra };
      reports.push(report);
      console.log(JSON.stringify(report));
    }
  } finally {
    await lab.close();
  }
  console.table(
    reports.map(({ byStatus, notes, ...r }) => ({
      ...r,
      byStatus: JSON.stringify(byStatus),
      notes: notes.join('; '),
    })),
  );
  const clean = reports.every((r) => r.lost === 0 && r.duplicated === 0 && r.orphaned === 0);
  console.log(
    clean
      ? 'every scenario: 0 lost, 0 duplicated, 0 orphaned'
      : 'some scenarios lost, duplicated or orphaned turns',
  );
  const out = resolve(opts.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    JSON.stringify(
      {
        summary: { scenarios: reports },
        config: { conversations: CONVERSATIONS, outageMs: OUTAGE_MS, clientTimeoutMs: CLIENT_TIMEOUT_MS },
      },
      null,
      2,
    ),
  );
  console.log(`report: ${out}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
