import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { Command } from 'commander';
import OpenAI from 'openai';
import { normalizeQuestion } from '../src/caching/question-features';
import { ResponseCache } from '../src/caching/response-cache.service';
import type { ResponseCacheReport } from '../src/caching/response-cache.types';
import { SemanticIndex } from '../src/caching/semantic-index';
import { chatCompletionsScope } from '../src/completions/chat-completions.service';
import {
  CachingConfig,
  LOCAL_EMBEDDING_MODELS,
  type LocalEmbeddingModel,
} from '../src/config/caching.config';
import { EmbeddingsConfig } from '../src/config/caching.config';
import { loadLocalEmbedder } from '../src/inference/local-embedder';
import { sharedWordVectors } from '../src/inference/word-vectors';
import { type BenchInstance, startBenchInstance } from './harness';
import { renderCacheChart } from './cache-chart';
import {
  calibrationHalf,
  recommendThreshold,
  type LogQuestion,
  type ProbeExplanation,
  type QuestionPair,
  ratio,
  readLog,
  readPairs,
  scoreAt,
  type SweepRow,
} from './cache-report';

/** Completion budget of every request: above the simulator's reply lengths, so answers finish (`stop`) and are cached. */
const MAX_TOKENS = 256;

interface Options {
  pairs: string;
  log?: string;
  logLimit?: number;
  logEvery: number;
  logPasses: number;
  threshold?: string;
  embeddingsUrl?: string;
  embeddingsModel?: string;
  embedder?: string;
  guards?: string;
  candidates?: string;
  maxFalseHitRate: number;
  minPrecision: number;
  sweep: string;
  concurrency: number;
  out: string;
  chart?: string;
}

/** What kvchat's chat completions endpoint reports about the cache (its `kvchat` extension). */
interface CacheExtension {
  kvchat?: { cache: { response: ResponseCacheReport; storedEntryId?: string } };
}

/** Runs `work` over `items` with `concurrency` workers, ticking `bar`. */
async function pool<T>(
  items: T[],
  concurrency: number,
  bar: SingleBar,
  work: (item: T, i: number) => Promise<void>,
) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.max(1, concurrency) }, async () => {
      while (next < items.length) {
        const i = next++;
        await work(items[i], i);
        bar.increment();
      }
    }),
  );
}

function progress(label: string, total: number): SingleBar {
  const bar = new SingleBar(
    { format: `${label.padEnd(8)} [{bar}] {value}/{total} | eta {eta}s`, clearOnComplete: false },
    Presets.shades_classic,
  );
  bar.start(total, 0);
  return bar;
}

/** The pairs benchmark: anchors cached, probes asked, plus the threshold sweep from the same cache. */
async function runPairs(instance: BenchInstance, pairs: QuestionPair[], options: Options, model: string) {
  const key = await instance.newKey('bench-pairs');
  const tenantId = await tenantOf(instance, key);
  const client = new OpenAI({ baseURL: `${instance.url}/v1`, apiKey: key, maxRetries: 0, timeout: 120_000 });
  const ask = (question: string, mode: 'no-cache' | 'no-store') =>
    client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: question }],
      max_tokens: MAX_TOKENS,
      // @ts-expect-error kvchat's cache control travels in the body
      cache: { mode },
    }) as Promise<OpenAI.ChatCompletion & CacheExtension>;

  // One entry per distinct anchor (as normalised for the exact key), stored fresh (`no-cache`: no lookup).
  const anchorIndex = new Map<string, number>();
  const anchors: string[] = [];
  for (const p of pairs) {
    const k = normalizeQuestion(p.anchor);
    if (!anchorIndex.has(k)) {
      anchorIndex.set(k, anchors.length);
      anchors.push(p.anchor);
    }
  }
  const entryToAnchor = new Map<string, number>();
  let bar = progress('load', anchors.length);
  await pool(anchors, options.concurrency, bar, async (anchor, i) => {
    const response = await ask(anchor, 'no-cache');
    const entryId = response.kvchat?.cache.storedEntryId;
    if (entryId) entryToAnchor.set(entryId, i);
  });
  bar.stop();

  // Probes through the API (`no-store`: the probes themselves never enter the cache).
  const served: { pair: QuestionPair; anchor: number; report: ResponseCacheReport }[] = [];
  bar = progress('probe', pairs.length);
  await pool(pairs, options.concurrency, bar, async (pair, i) => {
    const response = await ask(pair.probe, 'no-store');
    served[i] = {
      pair,
      anchor: anchorIndex.get(normalizeQuestion(pair.anchor)) ?? -1,
      report: response.kvchat?.cache.response ?? { hit: false },
    };
  });
  bar.stop();

  // The same probes explained in-process (candidates and guard verdicts regardless of the threshold) for the sweep.
  const cache = instance.running.app.get(ResponseCache);
  const explanations: ProbeExplanation[] = [];
  bar = progress('sweep', pairs.length);
  await pool(pairs, options.concurrency, bar, async (pair, i) => {
    const scope = chatCompletionsScope(tenantId, model, [{ role: 'user', content: pair.probe }], {
      maxTokens: MAX_TOKENS,
    });
    const explained = await cache.explain(scope, pair.probe);
    explanations[i] = {
      label: pair.label,
      anchor: served[i].anchor,
      exact: explained.exact ? (entryToAnchor.get(explained.exact.entryId) ?? -2) : -1,
      candidates: explained.candidates.map((c) => ({
        anchor: entryToAnchor.get(c.entryId) ?? -2,
        similarity: c.similarity,
        rejectedBy: c.rejection?.guard ?? null,
      })),
    };
  });
  bar.stop();

  const positives = served.filter((s) => s.pair.label === 1);
  const negatives = served.filter((s) => s.pair.label === 0);
  const hitAnchor = (s: (typeof served)[number]) =>
    s.report.entryId ? (entryToAnchor.get(s.report.entryId) ?? -2) : -1;
  const correct = positives.filter((s) => s.report.hit && hitAnchor(s) === s.anchor).length;
  const wrong = positives.filter((s) => s.report.hit && hitAnchor(s) !== s.anchor).length;
  const falseHits = negatives.filter((s) => s.report.hit).length;
  const guardsOnNegatives: Record<string, number> = {};
  const guardsOnPositives: Record<string, number> = {};
  for (const s of served) {
    if (s.report.hit || !s.report.guard) continue;
    const table = s.pair.label === 0 ? guardsOnNegatives : guardsOnPositives;
    table[s.report.guard] = (table[s.report.guard] ?? 0) + 1;
  }
  const thresholds = [...new Set(options.sweep.split(',').map(Number).filter(Number.isFinite))].sort(
    (a, b) => a - b,
  );
  const sweep: SweepRow[] = thresholds.map((t) => scoreAt(explanations, t));
  const calibration = explanations.filter((_, i) => calibrationHalf(normalizeQuestion(pairs[i].anchor)));
  const heldOut = explanations.filter((_, i) => !calibrationHalf(normalizeQuestion(pairs[i].anchor)));
  const calibrationSweep = thresholds.map((t) => scoreAt(calibration, t));
  const recommended = recommendThreshold(calibrationSweep, options.maxFalseHitRate, options.minPrecision);
  const operatingPoint = recommended
    ? {
        threshold: recommended.threshold,
        calibration: recommended,
        heldOut: scoreAt(heldOut, recommended.threshold),
        calibrationPairs: calibration.length,
        heldOutPairs: heldOut.length,
      }
    : null;
  const falseHitExamples = negatives
    .filter((s) => s.report.hit)
    .map((s) => ({
      cached: anchors[hitAnchor(s)] ?? '?',
      asked: s.pair.probe,
      similarity: s.report.similarity,
      type: s.report.type,
    }));
  return {
    anchors: anchors.length,
    probes: served.length,
    positives: positives.length,
    negatives: negatives.length,
    semanticRecall: ratio(correct, positives.length),
    falseHitRate: negatives.length > 0 ? ratio(falseHits, negatives.length) : null,
    precision: correct + wrong + falseHits > 0 ? ratio(correct, correct + wrong + falseHits) : null,
    wrongEntryHitRate: ratio(wrong, positives.length),
    hits: {
      exact: served.filter((s) => s.report.type === 'exact').length,
      semantic: served.filter((s) => s.report.type === 'semantic').length,
    },
    guardsOnNegatives,
    guardsOnPositives,
    falseHitExamples,
    sweep,
    operatingPoint,
  };
}

/** The question-log benchmark: replays the log `passes` times; every repeat should be a hit. */
async function runLog(
  instance: BenchInstance,
  log: LogQuestion[],
  passes: number,
  options: Options,
  model: string,
) {
  const key = await instance.newKey('bench-log');
  const client = new OpenAI({ baseURL: `${instance.url}/v1`, apiKey: key, maxRetries: 0, timeout: 120_000 });
  const entryIntent = new Map<string, string>();
  const entryQuestion = new Map<string, string>();
  const wrongIntentExamples: {
    asked: string;
    intent: string;
    cached: string;
    cachedIntent: string;
    similarity?: number;
  }[] = [];
  const seen = new Set<string>();
  const perPass: {
    pass: number;
    lookups: number;
    exactHits: number;
    semanticHits: number;
    wrongIntentHits: number;
  }[] = [];
  let repeatLookups = 0;
  let repeatHits = 0;
  let newQuestionLookups = 0;
  let newQuestionHits = 0;
  let newQuestionWrongHits = 0;
  for (let pass = 1; pass <= passes; pass++) {
    const row = { pass, lookups: 0, exactHits: 0, semanticHits: 0, wrongIntentHits: 0 };
    const bar = progress(`log #${pass}`, log.length);
    // In order, one at a time: what is cached when a question comes depends on everything before it.
    for (const q of log) {
      const response = (await client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: q.text }],
        max_tokens: MAX_TOKENS,
      })) as OpenAI.ChatCompletion & CacheExtension;
      const report = response.kvchat?.cache.response ?? { hit: false };
      const stored = response.kvchat?.cache.storedEntryId;
      if (stored) {
        entryIntent.set(stored, q.intent);
        entryQuestion.set(stored, q.text);
      }
      const normal = normalizeQuestion(q.text);
      const repeat = seen.has(normal);
      seen.add(normal);
      row.lookups++;
      const wrongIntent =
        report.hit && report.entryId !== undefined && entryIntent.get(report.entryId) !== q.intent;
      if (report.hit && report.type === 'exact') row.exactHits++;
      if (report.hit && report.type === 'semantic') row.semanticHits++;
      if (wrongIntent) {
        row.wrongIntentHits++;
        if (pass === 1 && wrongIntentExamples.length < 25 && report.entryId) {
          wrongIntentExamples.push({
            asked: q.text,
            intent: q.intent,
            cached: entryQuestion.get(report.entryId) ?? '?',
            cachedIntent: entryIntent.get(report.entryId) ?? '?',
            similarity: report.similarity,
          });
        }
      }
      if (repeat) {
        repeatLookups++;
        if (report.hit) repeatHits++;
      } else {
        newQuestionLookups++;
        if (report.hit) newQuestionHits++;
        if (wrongIntent) newQuestionWrongHits++;
      }
      bar.increment();
    }
    bar.stop();
    perPass.push(row);
  }
  return {
    questions: log.length,
    passes,
    intents: new Set(log.map((q) => q.intent)).size,
    /** Hits / lookups over questions asked before (exact repeats, after normalisation). */
    exactHitRate: ratio(repeatHits, repeatLookups),
    repeatLookups,
    /** Questions never asked before, answered from the cache (semantic hits across an intent). */
    newQuestionHitRate: ratio(newQuestionHits, newQuestionLookups),
    /** Of those hits, the share answered with another intent's answer. */
    newQuestionWrongIntentShare: ratio(newQuestionWrongHits, newQuestionHits),
    /** The first semantic hits answered with another intent's answer (what a lexical cache confuses). */
    wrongIntentExamples,
    perPass: perPass.map((r) => ({
      ...r,
      hitRate: ratio(r.exactHits + r.semanticHits, r.lookups),
      wrongIntentHitRate: ratio(r.wrongIntentHits, r.lookups),
    })),
  };
}

async function tenantOf(instance: BenchInstance, key: string): Promise<string> {
  const response = await fetch(`${instance.url}/v1/cache/stats`, {
    headers: { authorization: `Bearer ${key}` },
  });
  const body = (await response.json()) as { scope: { tenantId: string } };
  return body.scope.tenantId;
}

async function main(): Promise<void> {
  const program = new Command('bench:cache')
    .description(
      'Response-cache benchmark: semantic recall and false hits on question pairs; exact hits on a question log',
    )
    .requiredOption(
      '--pairs <file>',
      'pairs: JSON [{origin, similar}] or CSV sentence1,sentence2,label (`*` stripped)',
    )
    .option('--log <csv>', 'question log (CSV with text and category columns; one category = one answer)')
    .option(
      '--log-every <k>',
      'keep every k-th log question (a log sorted by intent then spans every intent)',
      (v) => parseInt(v, 10),
      1,
    )
    .option('--log-limit <n>', 'replay only the first n log questions', (v) => parseInt(v, 10))
    .option(
      '--log-passes <n>',
      'times the log is replayed (2: the second pass is all repeats)',
      (v) => parseInt(v, 10),
      2,
    )
    .option(
      '--threshold <t>',
      'RESPONSE_CACHE_SIMILARITY_THRESHOLD for this run (default: the configured one)',
    )
    .option(
      '--embeddings-url <url>',
      'an OpenAI-compatible /v1 with an embedding model (default: the simulator’s lexical embeddings)',
    )
    .option(
      '--embeddings-model <id>',
      'embedding model at --embeddings-url (default: the first listed with "embed" in its id)',
    )
    .option(
      '--embedder <model>',
      `local embedding model (EMBEDDINGS_LOCAL_MODEL: ${LOCAL_EMBEDDING_MODELS.join(', ')}; default: the configured one)`,
    )
    .option('--guards <list>', 'RESPONSE_CACHE_GUARDS for this run (default: all)')
    .option('--candidates <n>', 'RESPONSE_CACHE_CANDIDATES for this run (the sweep sees the same candidates)')
    .option(
      '--max-false-hit-rate <x>',
      'operating point: highest false-hit rate allowed on the calibration half',
      parseFloat,
      0.02,
    )
    .option(
      '--min-precision <x>',
      'operating point, for pair sets with no different-meaning pairs: lowest precision allowed on the calibration half',
      parseFloat,
      0.98,
    )
    .option(
      '--sweep <list>',
      'thresholds of the precision/recall sweep',
      '0.3,0.35,0.4,0.45,0.5,0.55,0.6,0.65,0.7,0.75,0.8,0.85,0.9,0.95',
    )
    .option(
      '--concurrency <n>',
      'requests in flight while loading and probing pairs',
      (v) => parseInt(v, 10),
      8,
    )
    .option('--out <json>', 'report path', 'bench/reports/cache.json')
    .option('--chart <svg>', 'chart of the question log passes (default: beside --out, .svg; needs --log)')
    .parse();
  const options = program.opts<Options>();
  const pairs = readPairs(options.pairs);
  const every = Math.max(1, options.logEvery);
  const log = options.log
    ? readLog(options.log)
        .filter((_, i) => i % every === 0)
        .slice(0, options.logLimit ?? Infinity)
    : [];
  if (pairs.length === 0) throw new Error(`${options.pairs} holds no pairs`);

  process.stderr.write(
    'starting kvchat in-process on the embedded defaults (engine simulator: answers are synthetic)\n',
  );
  // The in-process models, loaded before the app (which then shares them) to measure their cost alone.
  const embedderName = (options.embedder ??
    new EmbeddingsConfig().EMBEDDINGS_LOCAL_MODEL) as LocalEmbeddingModel;
  if (!LOCAL_EMBEDDING_MODELS.includes(embedderName))
    throw new Error(`--embedder must be one of ${LOCAL_EMBEDDING_MODELS.join(', ')}`);
  const modelCost = options.embeddingsUrl ? null : await measureModelLoad(embedderName);
  if (modelCost) {
    console.log(
      `local models: ${modelCost.embedder.model} loaded in ${modelCost.embedder.loadMs} ms, +${modelCost.embedder.rssMb} MB RSS; ` +
        `word vectors (${modelCost.words.size} words) in ${modelCost.words.loadMs} ms, +${modelCost.words.rssMb} MB RSS`,
    );
  }
  const instance = await startBenchInstance({
    EMBEDDINGS_LOCAL_MODEL: embedderName,
    ...(options.guards ? { RESPONSE_CACHE_GUARDS: options.guards } : {}),
    ...(options.candidates ? { RESPONSE_CACHE_CANDIDATES: options.candidates } : {}),
    SIMULATOR_TIME_SCALE: '0',
    RESPONSE_CACHE_MAX_ENTRIES_PER_TENANT: String(Math.max(10_000, 2 * (pairs.length + log.length))),
    ...(options.threshold ? { RESPONSE_CACHE_SIMILARITY_THRESHOLD: options.threshold } : {}),
    ...(options.embeddingsUrl ? { EMBEDDINGS_URL: options.embeddingsUrl } : {}),
    ...(options.embeddingsModel ? { EMBEDDINGS_MODEL: options.embeddingsModel } : {}),
  });
  const started = performance.now();
  try {
    const config = instance.running.app.get(CachingConfig);
    const semantic = instance.running.app.get(SemanticIndex);
    await semantic.collection();
    const status = semantic.describe();
    if (!status.enabled) throw new Error(`semantic lookups are off: ${status.reason}`);
    const model = (await new OpenAI({ baseURL: `${instance.url}/v1`, apiKey: instance.apiKey }).models.list())
      .data[0].id;
    const threshold = config.RESPONSE_CACHE_SIMILARITY_THRESHOLD;
    if (!options.sweep.split(',').map(Number).includes(threshold)) options.sweep += `,${threshold}`;

    const pairReport = await runPairs(instance, pairs, options, model);
    const logReport =
      log.length > 0 ? await runLog(instance, log, Math.max(1, options.logPasses), options, model) : null;
    const wallSeconds = (performance.now() - started) / 1000;
    const summary = {
      threshold,
      embeddingModel: status.model,
      embeddingDimension: status.dimension,
      guards: config.RESPONSE_CACHE_GUARDS,
      candidates: config.RESPONSE_CACHE_CANDIDATES,
      recommendedThreshold: pairReport.operatingPoint?.threshold ?? null,
      heldOutRecallAtRecommended: pairReport.operatingPoint?.heldOut.semanticRecall ?? null,
      heldOutFalseHitRateAtRecommended: pairReport.operatingPoint?.heldOut.falseHitRate ?? null,
      heldOutPrecisionAtRecommended: pairReport.operatingPoint?.heldOut.precision ?? null,
      embedderLoadMs: modelCost?.embedder.loadMs ?? null,
      embedderRssMb: modelCost?.embedder.rssMb ?? null,
      wordVectorsLoadMs: modelCost?.words.loadMs ?? null,
      wordVectorsRssMb: modelCost?.words.rssMb ?? null,
      semanticRecall: pairReport.semanticRecall,
      falseHitRate: pairReport.falseHitRate,
      precision: pairReport.precision,
      wrongEntryHitRate: pairReport.wrongEntryHitRate,
      exactHitRate: logReport?.exactHitRate ?? null,
      logNewQuestionHitRate: logReport?.newQuestionHitRate ?? null,
      logNewQuestionWrongIntentShare: logReport?.newQuestionWrongIntentShare ?? null,
    };

    console.log(
      `\npairs: ${options.pairs} — ${pairReport.probes} probes (${pairReport.positives} same meaning, ${pairReport.negatives} different), ${pairReport.anchors} anchors cached`,
    );
    console.table([
      {
        threshold,
        semanticRecall: pairReport.semanticRecall,
        falseHitRate: pairReport.falseHitRate,
        precision: pairReport.precision,
        wrongEntryHitRate: pairReport.wrongEntryHitRate,
        exactHits: pairReport.hits.exact,
        semanticHits: pairReport.hits.semantic,
      },
    ]);
    console.log('guards that stopped different-meaning probes:', pairReport.guardsOnNegatives);
    console.log('guards that stopped same-meaning probes (recall lost):', pairReport.guardsOnPositives);
    if (pairReport.falseHitExamples.length > 0) console.log('false hits:', pairReport.falseHitExamples);
    console.log('\nthreshold sweep (guards on | guards off):');
    console.table(
      pairReport.sweep.map((r) => ({
        threshold: r.threshold,
        recall: r.semanticRecall,
        falseHitRate: r.falseHitRate,
        precision: r.precision,
        'recall (no guards)': r.unguarded.semanticRecall,
        'falseHitRate (no guards)': r.unguarded.falseHitRate,
      })),
    );
    const op = pairReport.operatingPoint;
    console.log(
      op
        ? `\nrecommended operating point (calibration half, ${op.calibrationPairs} pairs: falseHitRate <= ${options.maxFalseHitRate}, precision >= ${options.minPrecision}): ` +
            `threshold ${op.threshold}; calibration recall ${op.calibration.semanticRecall}, falseHitRate ${op.calibration.falseHitRate}, precision ${op.calibration.precision}; ` +
            `held-out (${op.heldOutPairs} pairs) recall ${op.heldOut.semanticRecall}, falseHitRate ${op.heldOut.falseHitRate}, precision ${op.heldOut.precision}`
        : `\nno threshold of the sweep meets falseHitRate <= ${options.maxFalseHitRate} and precision >= ${options.minPrecision} on the calibration half`,
    );
    if (logReport) {
      console.log(
        `\nlog: ${options.log} — ${logReport.questions} questions, ${logReport.intents} intents, ${logReport.passes} passes`,
      );
      console.table(logReport.perPass);
      console.log(
        `exact repeats answered from the cache: ${logReport.exactHitRate} of ${logReport.repeatLookups}; ` +
          `new questions answered from the cache: ${logReport.newQuestionHitRate} (another intent's answer in ${logReport.newQuestionWrongIntentShare} of those)`,
      );
    }
    console.log('\nsummary', summary, `wall ${wallSeconds.toFixed(1)} s`);
    mkdirSync(dirname(resolve(options.out)), { recursive: true });
    writeFileSync(
      options.out,
      JSON.stringify(
        {
          command: 'bench:cache',
          pairsFile: options.pairs,
          logFile: options.log ?? null,
          logEvery: every,
          logLimit: options.logLimit ?? null,
          embeddingsUrl: options.embeddingsUrl ?? 'simulator (lexical)',
          wallSeconds,
          summary,
          pairs: pairReport,
          log: logReport,
        },
        null,
        2,
      ),
    );
    console.log(`report written to ${options.out}`);
    if (logReport) {
      const chart = resolve(options.chart ?? options.out.replace(/\.json$/, '') + '.svg');
      mkdirSync(dirname(chart), { recursive: true });
      writeFileSync(
        chart,
        await renderCacheChart(logReport.perPass, {
          title: [
            `kvchat response cache: ${logReport.questions} logged questions x ${logReport.passes} passes`,
            `SIMULATED engine; embeddings: ${options.embeddingsUrl ? status.model : 'simulator (lexical)'}; threshold ${threshold}`,
          ],
        }),
      );
      console.log(`chart written to ${relative(process.cwd(), chart)}`);
    }
  } finally {
    await instance.close();
  }
}

/** Load time (ms) and resident memory added (MB) by the local embedding model and the word vectors. */
async function measureModelLoad(name: LocalEmbeddingModel) {
  const mb = (bytes: number) => Math.round(bytes / 1e6);
  let rss = process.memoryUsage().rss;
  let started = performance.now();
  const embedder = await loadLocalEmbedder(name);
  const embedderCost = {
    model: embedder.model,
    loadMs: Math.round(performance.now() - started),
    rssMb: mb(process.memoryUsage().rss - rss),
  };
  await embedder.close();
  rss = process.memoryUsage().rss;
  started = performance.now();
  const words = sharedWordVectors();
  return {
    embedder: embedderCost,
    words: {
      size: words.size,
      loadMs: Math.round(performance.now() - started),
      rssMb: mb(process.memoryUsage().rss - rss),
    },
  };
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
