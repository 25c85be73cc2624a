import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { Command } from 'commander';
import OpenAI from 'openai';
import { quantile, readJsonl, round, startBenchInstance } from './harness';

/** One dialogue of the data file: `{messages: [{role, content}]}`; only user turns are replayed. */
interface Dialogue {
  id?: string | number;
  messages: { role: string; content: string }[];
}

/** One replayed turn, as the report lists it. */
export interface ReplayTurn {
  conversation: number;
  turn: number;
  status: 'ok' | 'failed';
  error?: string;
  ttftMs?: number;
  totalMs?: number;
  promptTokens?: number;
  cachedTokens?: number;
  completionTokens?: number;
}

/** Headline figures of a replay. */
export interface ReplaySummary {
  conversations: number;
  turns: number;
  failedTurns: number;
  /** Median server-measured TTFT over all turns, ms. */
  ttftP50Ms: number;
  ttftP95Ms: number;
  /** Cached / prompt tokens over turns 2 and later (engine-reported). */
  cachedTokenShare: number;
  /** Cached / prompt tokens over first turns (only the shared system prompt can hit there). */
  firstTurnCachedTokenShare: number;
  /** Per turn index (1-based): turns replayed, cached / prompt tokens, median TTFT (ms). */
  byTurn: { turn: number; turns: number; cachedTokenShare: number; ttftP50Ms: number }[];
}

/** Computes the summary of replayed turns. */
export function summarize(turns: ReplayTurn[], conversations: number): ReplaySummary {
  const ok = turns.filter((t) => t.status === 'ok');
  const later = ok.filter((t) => t.turn > 1);
  const first = ok.filter((t) => t.turn === 1);
  const share = (rows: ReplayTurn[]): number => {
    const prompt = rows.reduce((a, t) => a + (t.promptTokens ?? 0), 0);
    return prompt > 0 ? rows.reduce((a, t) => a + (t.cachedTokens ?? 0), 0) / prompt : 0;
  };
  const ttfts = ok.map((t) => t.ttftMs ?? 0);
  const maxTurn = Math.max(0, ...ok.map((t) => t.turn));
  const byTurn = Array.from({ length: maxTurn }, (_, i) => {
    const rows = ok.filter((t) => t.turn === i + 1);
    return {
      turn: i + 1,
      turns: rows.length,
      cachedTokenShare: round(share(rows), 4),
      ttftP50Ms: round(
        quantile(
          rows.map((t) => t.ttftMs ?? 0),
          0.5,
        ),
      ),
    };
  });
  return {
    conversations,
    turns: turns.length,
    failedTurns: turns.length - ok.length,
    ttftP50Ms: round(quantile(ttfts, 0.5)),
    ttftP95Ms: round(quantile(ttfts, 0.95)),
    cachedTokenShare: round(share(later), 4),
    firstTurnCachedTokenShare: round(share(first), 4),
    byTurn,
  };
}

async function main(): Promise<void> {
  const program = new Command('replay')
    .description('Replay the user turns of real dialogues through the kvchat HTTP API')
    .requiredOption('--data <jsonl>', 'dialogues, one {messages:[{role,content}]} per line')
    .option('--conversations <n>', 'how many dialogues to replay', (v) => parseInt(v, 10), 50)
    .option('--base-url <url>', 'a running kvchat (default: start one in-process on the embedded defaults)')
    .option('--api-key <key>', 'API key for --base-url (default: $KVCHAT_API_KEY)')
    .option('--concurrency <n>', 'conversations replayed at once', (v) => parseInt(v, 10), 8)
    .option('--max-tokens <n>', 'completion budget per turn', (v) => parseInt(v, 10), 256)
    .option(
      '--time-scale <x>',
      'simulator time scale when started in-process (1 = calibrated real time)',
      '1',
    )
    .option('--out <json>', 'report path', 'bench/reports/replay.json')
    .option('--quiet', 'no per-turn table', false)
    .parse();
  const opts = program.opts<{
    data: string;
    conversations: number;
    baseUrl?: string;
    apiKey?: string;
    concurrency: number;
    maxTokens: number;
    timeScale: string;
    out: string;
    quiet: boolean;
  }>();

  const dialogues = (await readJsonl<Dialogue>(opts.data)).filter((d) =>
    d.messages?.some((m) => m.role === 'user'),
  );
  const selected = dialogues.slice(0, opts.conversations);
  let baseUrl = opts.baseUrl;
  let apiKey = opts.apiKey ?? process.env.KVCHAT_API_KEY;
  let close = (): Promise<void> => Promise.resolve();
  if (!baseUrl) {
    process.stderr.write(
      'starting kvchat in-process on the embedded defaults (engine simulator: answers are synthetic)\n',
    );
    const instance = await startBenchInstance({
      SIMULATOR_REPLIES_FILE: resolve(opts.data),
      SIMULATOR_TIME_SCALE: opts.timeScale,
    });
    baseUrl = instance.url;
    apiKey = instance.apiKey;
    close = () => instance.close();
  }
  if (!apiKey) throw new Error('--api-key (or KVCHAT_API_KEY) is required with --base-url');

  const turnsTotal = selected.reduce((a, d) => a + d.messages.filter((m) => m.role === 'user').length, 0);
  const bar = new SingleBar(
    { format: 'replay [{bar}] {value}/{total} turns | {failed} failed | eta {eta}s' },
    Presets.shades_classic,
  );
  bar.start(turnsTotal, 0, { failed: 0 });
  const turns: ReplayTurn[] = [];
  let failed = 0;
  // The API is called like any client would: the OpenAI SDK's generic JSON transport, no bespoke HTTP client.
  const client = new OpenAI({ baseURL: baseUrl, apiKey, maxRetries: 0, timeout: 300_000 });

  const replayOne = async (dialogue: Dialogue, index: number): Promise<void> => {
    const conversation = await client.post<{ id: string }>('/v1/conversations', {
      body: {
        title: `replay ${String(dialogue.id ?? index)}`,
        metadata: { source: opts.data, dialogue: dialogue.id ?? index },
      },
    });
    let turn = 0;
    for (const message of dialogue.messages.filter((m) => m.role === 'user')) {
      turn++;
      try {
        const { assistantMessage: res } = await client.post<{
          assistantMessage: {
            usage: { promptTokens: number; cachedTokens: number; completionTokens: number };
            timings: { ttftMs: number; totalMs: number };
          };
        }>(`/v1/conversations/${conversation.id}/turns`, {
          body: { content: message.content, maxTokens: opts.maxTokens },
        });
        turns.push({
          conversation: index + 1,
          turn,
          status: 'ok',
          ttftMs: res.timings.ttftMs,
          totalMs: res.timings.totalMs,
          promptTokens: res.usage.promptTokens,
          cachedTokens: res.usage.cachedTokens,
          completionTokens: res.usage.completionTokens,
        });
      } catch (e) {
        failed++;
        turns.push({
          conversation: index + 1,
          turn,
          status: 'failed',
          error: e instanceof Error ? e.message : String(e),
        });
      }
      bar.increment(1, { failed });
    }
  };

  let next = 0;
  const started = performance.now();
  try {
    await Promise.all(
      Array.from({ length: Math.max(1, opts.concurrency) }, async () => {
        while (next < selected.length) {
          const i = next++;
          await replayOne(selected[i], i);
        }
      }),
    );
  } finally {
    bar.stop();
    await close();
  }
  const wallSeconds = (performance.now() - started) / 1000;
  turns.sort((a, b) => a.conversation - b.conversation || a.turn - b.turn);
  if (!opts.quiet) {
    console.table(
      turns.map((t) => ({
        conv: t.conversation,
        turn: t.turn,
        status: t.status,
        ttftMs: t.ttftMs,
        prompt: t.promptTokens,
        cached: t.cachedTokens,
        cachedShare: t.promptTokens ? round((t.cachedTokens ?? 0) / t.promptTokens, 3) : undefined,
      })),
    );
  }
  const summary = summarize(turns, selected.length);
  const { byTurn, ...headline } = summary;
  console.table(byTurn);
  console.log('summary', headline, `wall ${wallSeconds.toFixed(1)} s`);
  mkdirSync(dirname(resolve(opts.out)), { recursive: true });
  writeFileSync(
    opts.out,
    JSON.stringify(
      {
        command: 'replay',
        data: opts.data,
        baseUrl: opts.baseUrl ?? 'in-process',
        wallSeconds,
        summary,
        turns,
      },
      null,
      2,
    ),
  );
  console.log(`report written to ${opts.out}`);
  if (summary.failedTurns > 0) process.exitCode = 1;
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
