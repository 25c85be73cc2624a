import { quantile, round } from './harness';

/** One dialogue of a data file: `{messages: [{role, content}]}`. */
export interface Dialogue {
  id?: string | number;
  messages: { role: string; content: string }[];
}

/** One measured turn of a benchmark run. */
export interface MeasuredTurn {
  config: string;
  conversation: number;
  /** 1-based turn index in the conversation. */
  turn: number;
  status: 'ok' | 'failed';
  error?: string;
  promptTokens: number;
  cachedTokens: number;
  /** The backend's block-aligned common prefix with the previous prompt, tokens. */
  backendReusableTokens: number;
  /**
   * The engine's TTFT for this request in the simulator's calibrated model time: its modelled prefill
   * (overhead + uncached tokens x prefill cost + tokens loaded from LMCache x load cost), unscaled and
   * without queueing (`x-kvchat-engine-model-prefill-ms`), ms.
   */
  engineTtftMs: number | null;
  /** TTFT the backend measured (engine request start to first token), wall-clock under the time scale, ms. */
  wallTtftMs: number;
  /** Whole turn through the API (client-side), wall-clock, ms. */
  apiMs: number;
  replica: string | null;
  /** Served from the response cache (no engine call): left out of the KV figures. */
  responseCacheHit: boolean;
  /** The context window moved this turn (compaction or sliding). */
  windowMoved: boolean;
}

/** Figures of one configuration. */
export interface ConfigFigures {
  turns: number;
  failedTurns: number;
  /** Turns answered from the response cache (excluded below). */
  responseCacheHits: number;
  /** Engine cached tokens / prompt tokens, turns 2 and later. */
  prefixReuse: number;
  /**
   * The prefix-reuse ceiling of the prompts (engine simulator's `/sim/prefix-limit`): tokens each prompt
   * shares with an earlier prompt + answer / prompt tokens, turns 2 and later; absent when not measured.
   */
  prefixReuseLimit?: number;
  /** The backend's reusable tokens / prompt tokens, turns 2 and later. */
  backendPrefixReuse: number;
  /** 1 - computed prompt tokens / prompt tokens, every turn. */
  prefillReduction: number;
  promptTokens: number;
  cachedTokens: number;
  /** TTFT (`ttftOf`: engine model ms on the simulator, backend-measured on a real engine), turns 2 and later. */
  ttftP50Ms: number;
  ttftP95Ms: number;
  /** Backend-measured TTFT, wall-clock under the time scale, turns 2 and later, ms. */
  wallTtftP50Ms: number;
  /** Whole turn through the API, wall-clock, ms. */
  apiP50Ms: number;
  apiP95Ms: number;
  windowMoves: number;
  /** Turns answered per replica. */
  replicas: Record<string, number>;
  /** Per turn index: engine TTFT p50/p95 (model ms) and the cached-token share. */
  byTurn: {
    turn: number;
    n: number;
    ttftP50Ms: number;
    ttftP95Ms: number;
    cachedShare: number;
    promptTokens: number;
  }[];
}

/** The report's headline figures (names from ../shared/design/benchmarks.md). */
export interface MultiturnSummary {
  /** 1 - median engine TTFT with the defaults / with every cache off, turns 2 and later. */
  ttftReduction: number;
  /** 1 - prompt tokens the engine computed / prompt tokens, with the defaults. */
  prefillReduction: number;
  /** Engine cached tokens / prompt tokens, turns 2 and later, with the defaults on N replicas. */
  prefixReuse: number;
  /**
   * The highest prefixReuse the prompt layout allows, with the defaults: tokens each turn's prompt shares
   * with the previous turn's prompt and answer / its prompt tokens, turns 2 and later (NaN when not measured).
   */
  prefixReuseLimit: number;
  /** prefixReuse / prefixReuseLimit: how much of the reachable reuse the engine got. */
  prefixReuseOfLimit: number;
  /** prefixReuse on one replica minus prefixReuse on N replicas with the router. */
  replicaReuseGap: number;
  /** The same figures for the `naive` baseline. */
  naive: { ttftReduction: number; prefillReduction: number; prefixReuse: number; prefixReuseLimit: number };
}

/**
 * Chains dialogues into `count` sessions of exactly `turns` user messages each, as one user would over
 * a long session: dialogues are taken in file order, each session continuing where the last stopped
 * (wrapping around when the file runs out).
 */
export function chainSessions(dialogues: readonly Dialogue[], count: number, turns: number): string[][] {
  const userTurns = dialogues.map((d) =>
    d.messages.filter((m) => m.role === 'user' && typeof m.content === 'string').map((m) => m.content),
  );
  if (!userTurns.some((u) => u.length > 0)) throw new Error('the data file has no user messages');
  const sessions: string[][] = [];
  let next = 0;
  for (let s = 0; s < count; s++) {
    const session: string[] = [];
    while (session.length < turns) {
      session.push(...userTurns[next % userTurns.length].slice(0, turns - session.length));
      next++;
    }
    sessions.push(session);
  }
  return sessions;
}

const ratio = (a: number, b: number): number => (b > 0 ? a / b : 0);
/**
 * The TTFT a turn is judged by: the engine's modelled TTFT when the engine reports one (the
 * simulator, in calibrated model time), else the backend-measured TTFT (a real engine such as vLLM).
 */
export const ttftOf = (t: MeasuredTurn): number => t.engineTtftMs ?? t.wallTtftMs;
const sum = (rows: readonly MeasuredTurn[], f: (t: MeasuredTurn) => number): number =>
  rows.reduce((a, t) => a + f(t), 0);

/** The figures of one configuration's turns. */
export function figuresOf(turns: readonly MeasuredTurn[]): ConfigFigures {
  const ok = turns.filter((t) => t.status === 'ok');
  const engine = ok.filter((t) => !t.responseCacheHit);
  const later = engine.filter((t) => t.turn > 1);
  const ttfts = later.map(ttftOf);
  const replicas: Record<string, number> = {};
  for (const t of engine) if (t.replica) replicas[t.replica] = (replicas[t.replica] ?? 0) + 1;
  const maxTurn = Math.max(0, ...engine.map((t) => t.turn));
  const byTurn: ConfigFigures['byTurn'] = [];
  for (let turn = 1; turn <= maxTurn; turn++) {
    const rows = engine.filter((t) => t.turn === turn);
    if (rows.length === 0) continue;
    const values = rows.map(ttftOf);
    const prompt = sum(rows, (t) => t.promptTokens);
    byTurn.push({
      turn,
      n: rows.length,
      ttftP50Ms: round(quantile(values, 0.5)),
      ttftP95Ms: round(quantile(values, 0.95)),
      cachedShare: round(
        ratio(
          sum(rows, (t) => t.cachedTokens),
          prompt,
        ),
        4,
      ),
      promptTokens: Math.round(prompt / rows.length),
    });
  }
  const prompt = sum(engine, (t) => t.promptTokens);
  const cached = sum(engine, (t) => t.cachedTokens);
  const laterPrompt = sum(later, (t) => t.promptTokens);
  return {
    turns: turns.length,
    failedTurns: turns.length - ok.length,
    responseCacheHits: ok.length - engine.length,
    prefixReuse: round(
      ratio(
        sum(later, (t) => t.cachedTokens),
        laterPrompt,
      ),
      4,
    ),
    backendPrefixReuse: round(
      ratio(
        sum(later, (t) => t.backendReusableTokens),
        laterPrompt,
      ),
      4,
    ),
    prefillReduction: round(ratio(cached, prompt), 4),
    promptTokens: prompt,
    cachedTokens: cached,
    ttftP50Ms: round(quantile(ttfts, 0.5)),
    ttftP95Ms: round(quantile(ttfts, 0.95)),
    wallTtftP50Ms: round(
      quantile(
        later.map((t) => t.wallTtftMs),
        0.5,
      ),
    ),
    apiP50Ms: round(
      quantile(
        ok.map((t) => t.apiMs),
        0.5,
      ),
    ),
    apiP95Ms: round(
      quantile(
        ok.map((t) => t.apiMs),
        0.95,
      ),
    ),
    windowMoves: ok.filter((t) => t.windowMoved).length,
    replicas,
    byTurn,
  };
}

/**
 * The headline figures. `configs` must hold `cache_off`, `naive` and `default`; `default_1_replica`
 * (the defaults on one replica) gives replicaReuseGap (NaN without it).
 */
export function summarizeConfigs(configs: Record<string, ConfigFigures>): MultiturnSummary {
  const off = configs.cache_off;
  const def = configs.default;
  const naive = configs.naive;
  const single = configs.default_1_replica;
  const reduction = (c: ConfigFigures | undefined): number =>
    c && off && off.ttftP50Ms > 0 ? round(1 - c.ttftP50Ms / off.ttftP50Ms, 4) : NaN;
  return {
    ttftReduction: reduction(def),
    prefillReduction: def?.prefillReduction ?? NaN,
    prefixReuse: def?.prefixReuse ?? NaN,
    prefixReuseLimit: def?.prefixReuseLimit ?? NaN,
    prefixReuseOfLimit:
      def?.prefixReuseLimit !== undefined && def.prefixReuseLimit > 0
        ? round(def.prefixReuse / def.prefixReuseLimit, 4)
        : NaN,
    replicaReuseGap: single && def ? round(single.prefixReuse - def.prefixReuse, 4) : NaN,
    naive: {
      ttftReduction: reduction(naive),
      prefillReduction: naive?.prefillReduction ?? NaN,
      prefixReuse: naive?.prefixReuse ?? NaN,
      prefixReuseLimit: naive?.prefixReuseLimit ?? NaN,
    },
  };
}
