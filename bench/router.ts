import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { Command } from 'commander';
import { parse } from 'csv-parse/sync';
import type { RouteDecision } from '../src/agents/agents.types';
import { AgentRouter } from '../src/agents/routing/agent-router.service';
import type { RoutableAgent } from '../src/agents/routing/intent-classifier';
import { representativeExamples } from '../src/agents/routing/intent-index';
import { AgentsConfig } from '../src/config/agents.config';
import { EmbeddingsService } from '../src/inference/embeddings.service';
import { quantile, readJsonl, round as roundTo, startBenchInstance } from './harness';
import { mulberry32 } from '../src/common/prng';

/** Router figures are reported to 4 decimals. */
const round = (x: number, digits = 4): number => roundTo(x, digits);

/** One labelled row of a CSV: a user message and its intent. */
interface Row {
  text: string;
  intent: string;
}

interface Options {
  examples: string;
  data: string;
  perIntent: number;
  intents?: number;
  draw: 'representative' | 'random';
  seed: number;
  floor?: string;
  textColumn: string;
  labelColumn: string;
  concurrency: number;
  latencySample: number;
  offTopic?: string;
  offTopicLimit: number;
  embedder?: string;
  ranking?: string;
  out: string;
}

/** Reads `text,label` rows (header row required; column names configurable). */
function readRows(path: string, textColumn: string, labelColumn: string): Row[] {
  const records = parse(readFileSync(path), { columns: true, skip_empty_lines: true, trim: true }) as Record<
    string,
    string
  >[];
  return records
    .map((r) => ({ text: r[textColumn] ?? '', intent: r[labelColumn] ?? '' }))
    .filter((r) => r.text.length > 0 && r.intent.length > 0);
}

/** Agent names must match /^[a-z][a-z0-9_-]*$/: intent labels are lowercased and cleaned, uniquely. */
function agentNames(intents: readonly string[]): Map<string, string> {
  const names = new Map<string, string>();
  const used = new Set<string>();
  for (const intent of intents) {
    let base = intent
      .toLowerCase()
      .replace(/[^a-z0-9_-]+/g, '_')
      .slice(0, 90);
    if (!/^[a-z]/.test(base)) base = `i_${base}`;
    let name = base;
    for (let n = 2; used.has(name); n++) name = `${base}_${n}`;
    used.add(name);
    names.set(intent, name);
  }
  return names;
}

/** Off-topic messages: the user turns of JSONL dialogues, or the text column of a CSV. */
async function readOffTopic(path: string, textColumn: string): Promise<string[]> {
  if (path.endsWith('.jsonl')) {
    const dialogues = await readJsonl<{ messages?: { role: string; content: string }[] }>(path);
    return dialogues.flatMap((d) =>
      (d.messages ?? []).filter((m) => m.role === 'user').map((m) => m.content),
    );
  }
  const records = parse(readFileSync(path), { columns: true, skip_empty_lines: true }) as Record<
    string,
    string
  >[];
  return records.map((r) => r[textColumn] ?? '').filter((t) => t.length > 0);
}

const normalize = (text: string): string => text.toLowerCase().replace(/\s+/g, ' ').trim();

async function main(): Promise<void> {
  const opts = new Command('bench:router')
    .description(
      'Intent-routing accuracy: each intent of --examples becomes an agent with K examples, every question of --data is routed',
    )
    .requiredOption(
      '--examples <csv>',
      'labelled examples (text,category): the pool each agent draws its K examples from',
    )
    .requiredOption(
      '--data <csv>',
      'labelled questions to route (text,category); must not overlap --examples',
    )
    .option('--per-intent <k>', 'examples per agent (K)', (v) => parseInt(v, 10), 10)
    .option('--intents <n>', 'agents: the first N intents of --examples (default: all)', (v) =>
      parseInt(v, 10),
    )
    .option(
      '--draw <how>',
      'how the K examples are drawn from an intent\'s pool: "representative" (greedy facility location over their embeddings) or "random" (seeded)',
      'representative',
    )
    .option('--seed <n>', 'seed of the random draw', (v) => parseInt(v, 10), 42)
    .option('--floor <x>', 'confidence floor (AGENT_ROUTING_FLOOR; default: the configured one)')
    .option('--text-column <name>', 'CSV column holding the message', 'text')
    .option('--label-column <name>', 'CSV column holding the intent', 'category')
    .option(
      '--concurrency <n>',
      'routing decisions in flight (embeddings are batched)',
      (v) => parseInt(v, 10),
      256,
    )
    .option(
      '--latency-sample <n>',
      'questions routed one at a time to measure decision latency',
      (v) => parseInt(v, 10),
      200,
    )
    .option(
      '--off-topic <file>',
      'messages no agent should claim (JSONL dialogues {messages:[{role,content}]}: their user turns; or CSV with --text-column): measures how often they clear the floor',
    )
    .option('--off-topic-limit <n>', 'off-topic messages used', (v) => parseInt(v, 10), 1000)
    .option(
      '--embedder <model>',
      'local embedding model (EMBEDDINGS_LOCAL_MODEL; default: the configured one)',
    )
    .option(
      '--ranking <model>',
      'how the embedding classifier ranks agents (AGENT_ROUTING_MODEL: softmax or nearest; default: the configured one)',
    )
    .requiredOption('--out <json>', 'report path')
    .parse()
    .opts<Options>();
  if (opts.draw !== 'representative' && opts.draw !== 'random')
    throw new Error('--draw must be representative or random');
  if (!(opts.perIntent >= 1)) throw new Error('--per-intent must be a positive integer');

  const exampleRows = readRows(opts.examples, opts.textColumn, opts.labelColumn);
  const pools = new Map<string, string[]>();
  for (const r of exampleRows) {
    const pool = pools.get(r.intent) ?? [];
    if (!pools.has(r.intent)) pools.set(r.intent, pool);
    pool.push(r.text);
  }
  const intents = [...pools.keys()].slice(0, opts.intents ?? pools.size);
  const names = agentNames(intents);
  const exampleTexts = new Set(exampleRows.map((r) => normalize(r.text)));
  const dataRows = readRows(opts.data, opts.textColumn, opts.labelColumn);
  const inScope = dataRows.filter((r) => names.has(r.intent));
  const questions = inScope.filter((r) => !exampleTexts.has(normalize(r.text)));
  const overlapping = inScope.length - questions.length;
  if (questions.length === 0) throw new Error('no question of --data belongs to the selected intents');
  const offTopic = opts.offTopic
    ? (await readOffTopic(opts.offTopic, opts.textColumn)).slice(0, opts.offTopicLimit)
    : [];

  process.stderr.write(
    `starting kvchat in-process (engine simulator; embeddings as configured); ${intents.length} intents x ${opts.perIntent} ` +
      `examples (${opts.draw}), ${questions.length} questions` +
      (overlapping > 0 ? `, ${overlapping} questions skipped: also in --examples` : '') +
      '\n',
  );
  const instance = await startBenchInstance({
    SIMULATOR_TIME_SCALE: '0',
    ...(opts.floor !== undefined ? { AGENT_ROUTING_FLOOR: opts.floor } : {}),
    ...(opts.embedder !== undefined ? { EMBEDDINGS_LOCAL_MODEL: opts.embedder } : {}),
    ...(opts.ranking !== undefined ? { AGENT_ROUTING_MODEL: opts.ranking } : {}),
  });
  try {
    const app = instance.running.app;
    const router = app.get(AgentRouter);
    const embeddings = app.get(EmbeddingsService);
    const config = app.get(AgentsConfig);
    const model = await embeddings.describe();

    // Each intent's K examples: the most representative of its pool, or a seeded random sample.
    const random = mulberry32(opts.seed);
    const agents: RoutableAgent[] = [];
    for (const intent of intents) {
      const pool = pools.get(intent) ?? [];
      let picked: string[];
      if (opts.draw === 'representative') {
        const vectors = await embeddings.embedMany(pool);
        picked = representativeExamples(vectors, opts.perIntent).map((i) => pool[i]);
      } else {
        const shuffled = [...pool];
        for (let i = shuffled.length - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
        }
        picked = shuffled.slice(0, opts.perIntent);
      }
      agents.push({
        name: names.get(intent) ?? intent,
        description: intent.replace(/[_-]+/g, ' '),
        examples: picked,
      });
    }
    const fallback = config.AGENT_FALLBACK;
    // Builds the index (and trains the ranking model) once, the classifier caches it per agents array,
    // before timing anything.
    const buildStarted = performance.now();
    await router.decide(questions[0].text, agents, fallback);
    const indexBuildMs = performance.now() - buildStarted;

    const bar = new SingleBar(
      { format: 'route [{bar}] {value}/{total} questions | eta {eta}s' },
      Presets.shades_classic,
    );
    bar.start(questions.length, 0);
    const decisions: RouteDecision[] = new Array<RouteDecision>(questions.length);
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: Math.max(1, opts.concurrency) }, async () => {
        while (next < questions.length) {
          const i = next++;
          decisions[i] = await router.decide(questions[i].text, agents, fallback);
          bar.increment();
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    bar.stop();

    // Decision latency, one question at a time (one embedding request + the index scan each).
    const latencies: number[] = [];
    for (const q of questions.slice(0, Math.min(opts.latencySample, questions.length))) {
      const t = performance.now();
      await router.decide(q.text, agents, fallback);
      latencies.push(performance.now() - t);
    }

    // Off-topic messages: any agent above the floor is a wrong route (the fallback should answer).
    const offTopicBest: number[] = [];
    for (let i = 0; i < offTopic.length; i += Math.max(1, opts.concurrency)) {
      const batch = offTopic.slice(i, i + Math.max(1, opts.concurrency));
      const routed = await Promise.all(batch.map((text) => router.decide(text, agents, fallback)));
      offTopicBest.push(...routed.map((d) => d.candidates?.[0]?.score ?? 0));
    }
    const offTopicRouted = (floor: number): number =>
      offTopicBest.length > 0
        ? round(offTopicBest.filter((x) => x >= floor).length / offTopicBest.length)
        : NaN;

    const expected = questions.map((q) => names.get(q.intent) ?? q.intent);
    const correct = decisions.filter((d, i) => !d.fallback && d.agent === expected[i]).length;
    const fallbacks = decisions.filter((d) => d.fallback).length;
    const top1 = decisions.filter((d, i) => d.candidates?.[0]?.agent === expected[i]).length;
    const floors = [0, 0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7];
    const floorSweep = floors.map((floor) => {
      let ok = 0;
      let fell = 0;
      decisions.forEach((d, i) => {
        const best = d.candidates?.[0];
        if (!best || best.score < floor) fell++;
        else if (best.agent === expected[i]) ok++;
      });
      return {
        floor,
        routingAccuracy: round(ok / questions.length),
        fallbackRate: round(fell / questions.length),
        ...(offTopic.length > 0 ? { offTopicRoutedRate: offTopicRouted(floor) } : {}),
      };
    });
    const perIntent = agents
      .map((a) => {
        const idx = expected.flatMap((e, i) => (e === a.name ? [i] : []));
        const ok = idx.filter((i) => decisions[i].agent === a.name && !decisions[i].fallback).length;
        return {
          intent: a.name,
          questions: idx.length,
          accuracy: idx.length > 0 ? round(ok / idx.length) : NaN,
        };
      })
      .filter((r) => r.questions > 0)
      .sort((a, b) => a.accuracy - b.accuracy);
    const confusionCounts = new Map<string, number>();
    decisions.forEach((d, i) => {
      if (d.agent !== expected[i]) {
        const key = `${expected[i]} -> ${d.agent}`;
        confusionCounts.set(key, (confusionCounts.get(key) ?? 0) + 1);
      }
    });
    const confusions = [...confusionCounts.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)
      .map(([pair, count]) => ({ expected: pair.split(' -> ')[0], routed: pair.split(' -> ')[1], count }));

    const summary = {
      routingAccuracy: round(correct / questions.length),
      fallbackRate: round(fallbacks / questions.length),
      top1Accuracy: round(top1 / questions.length),
      ...(offTopic.length > 0 ? { offTopicRoutedRate: offTopicRouted(config.AGENT_ROUTING_FLOOR) } : {}),
      questions: questions.length,
      intents: agents.length,
      perIntent: opts.perIntent,
      draw: opts.draw,
      floor: config.AGENT_ROUTING_FLOOR,
      classifier: config.AGENT_CLASSIFIER,
      rankingModel: config.AGENT_ROUTING_MODEL,
      indexBuildMs: round(indexBuildMs, 0),
      decisionsPerSecond: round(questions.length / seconds, 1),
      decisionP50Ms: round(quantile(latencies, 0.5), 2),
      decisionP99Ms: round(quantile(latencies, 0.99), 2),
    };
    const report = {
      command: `npm run bench:router -- ${process.argv.slice(2).join(' ')}`,
      createdAt: new Date().toISOString(),
      config: {
        examples: resolve(opts.examples),
        data: resolve(opts.data),
        perIntent: opts.perIntent,
        intents: agents.length,
        draw: opts.draw,
        seed: opts.seed,
        floor: config.AGENT_ROUTING_FLOOR,
        fallbackAgent: fallback,
        classifier: config.AGENT_CLASSIFIER,
        rankingModel: config.AGENT_ROUTING_MODEL,
        embeddingModel: model.model,
        embeddingDimension: model.dimension,
        skippedOverlappingQuestions: overlapping,
        offTopic: opts.offTopic ? resolve(opts.offTopic) : null,
        offTopicMessages: offTopic.length,
        skippedOutOfScopeQuestions: dataRows.length - inScope.length,
      },
      summary,
      floorSweep,
      perIntent,
      confusions,
    };
    mkdirSync(dirname(resolve(opts.out)), { recursive: true });
    writeFileSync(opts.out, `${JSON.stringify(report, null, 2)}\n`);

    const lines = [
      '',
      `intent routing: ${agents.length} agents x ${opts.perIntent} examples (${opts.draw}), ${questions.length} questions, classifier ${config.AGENT_CLASSIFIER}, ranking ${config.AGENT_ROUTING_MODEL} (${model.model}, ${model.dimension} dims)`,
      `  routingAccuracy  ${summary.routingAccuracy.toFixed(4)}   (routed to the question's intent, floor ${summary.floor})`,
      `  fallbackRate     ${summary.fallbackRate.toFixed(4)}   (below the floor: answered by ${fallback})`,
      `  top1Accuracy     ${summary.top1Accuracy.toFixed(4)}   (best candidate, ignoring the floor)`,
      ...(offTopic.length > 0
        ? [
            `  offTopicRouted   ${offTopicRouted(config.AGENT_ROUTING_FLOOR).toFixed(4)}   (of ${offTopic.length} off-topic messages, claimed by an agent instead of ${fallback})`,
          ]
        : []),
      `  index build      ${summary.indexBuildMs} ms (embedding the examples, training the ranking model)`,
      `  decisions        ${summary.decisionsPerSecond}/s batched; one at a time p50 ${summary.decisionP50Ms} ms, p99 ${summary.decisionP99Ms} ms`,
      '',
      `  floor   accuracy  fallback${offTopic.length > 0 ? '  off-topic routed' : ''}`,
      ...floorSweep.map(
        (f) =>
          `  ${f.floor.toFixed(2).padEnd(6)}  ${f.routingAccuracy.toFixed(4)}    ${f.fallbackRate.toFixed(4)}` +
          (f.offTopicRoutedRate !== undefined ? `    ${f.offTopicRoutedRate.toFixed(4)}` : ''),
      ),
      '',
      '  weakest intents: ' +
        perIntent
          .slice(0, 5)
          .map((r) => `${r.intent} ${r.accuracy.toFixed(2)}`)
          .join(', '),
      `report: ${opts.out}`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
  } finally {
    await instance.close();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
