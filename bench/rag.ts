import { readdirSync, readFileSync, statSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { Command } from 'commander';
import { removeStopwords } from 'stopword';
import { EmbeddingsService } from '../src/inference/embeddings.service';
import { SUPPORTED_EXTENSIONS } from '../src/knowledge/document-formats';
import type { RetrievalMode } from '../src/knowledge/retrieval.service';
import { type BenchInstance, readJsonl, round, startBenchInstance } from './harness';

/** One question of a QA file: `doc` is the file name of the document that holds the answer. */
interface QaItem {
  id?: string;
  doc: string;
  question: string;
  answer: string;
}

interface Options {
  docs: string;
  qa: string;
  out: string;
  k: number;
  depth: number;
  databaseUrl?: string;
}

/** Retrieval quality of one method over the QA file. */
interface MethodFigures {
  /** Share of questions whose answer document is the first passage's document. */
  recallAt1: number;
  /** Share whose answer document has a passage in the top 5. */
  recallAt5: number;
  /** Mean reciprocal rank of the answer document's first passage (0 past `depth`). */
  mrr: number;
  /** Share for which one of the top 5 passages holds at least half of the answer's content words. */
  answerRecallAt5: number;
}

const MODES: readonly RetrievalMode[] = ['hybrid', 'vector', 'fullText'];

/** Lower-cased words of a text (letters and digits). */
function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** The answer's content words: lower-cased, English stop words (the `stopword` package's list) dropped, once each. */
export function contentWords(text: string): string[] {
  return [...new Set(removeStopwords(words(text)))];
}

/** Whether `passage` holds at least half of `answerWords` (as whole words). */
export function holdsAnswer(passage: string, answerWords: readonly string[]): boolean {
  if (answerWords.length === 0) return false;
  const present = new Set(words(passage));
  const found = answerWords.filter((w) => present.has(w)).length;
  return found * 2 >= answerWords.length;
}

function bar(label: string, total: number): SingleBar {
  const b = new SingleBar(
    { format: `${label.padEnd(10)} [{bar}] {value}/{total} | {detail}`, clearOnComplete: false },
    Presets.shades_classic,
  );
  b.start(total, 0, { detail: '' });
  return b;
}

/** Counts the service's embedding calls (each one /v1/embeddings request for at most EMBEDDINGS_BATCH_SIZE texts). */
function countEmbeddings(service: EmbeddingsService): { calls: number; texts: number } {
  const counter = { calls: 0, texts: 0 };
  const embedMany = service.embedMany.bind(service);
  const embed = service.embed.bind(service);
  service.embedMany = (texts) => {
    counter.calls += 1;
    counter.texts += texts.length;
    return embedMany(texts);
  };
  service.embed = (text) => {
    counter.calls += 1;
    counter.texts += 1;
    return embed(text);
  };
  return counter;
}

async function api<T>(instance: BenchInstance, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${instance.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${instance.apiKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await response.json()) as T;
  if (!response.ok) throw new Error(`${path} answered ${response.status}: ${JSON.stringify(json)}`);
  return json;
}

interface Accepted {
  name: string;
  ingestionId: string;
  status: string;
  unchanged: boolean;
}

/** Uploads the files as one multipart request per 20 files; returns what was accepted. */
async function upload(instance: BenchInstance, kbId: string, files: string[]): Promise<Accepted[]> {
  const accepted: Accepted[] = [];
  for (let i = 0; i < files.length; i += 20) {
    const form = new FormData();
    for (const file of files.slice(i, i + 20)) {
      form.append('file', new Blob([new Uint8Array(readFileSync(file))]), basename(file));
    }
    const response = await fetch(`${instance.url}/v1/knowledge-bases/${kbId}/documents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${instance.apiKey}` },
      body: form,
    });
    const body = (await response.json()) as { documents: Accepted[]; rejected: unknown[] };
    if (response.status !== 202)
      throw new Error(`upload answered ${response.status}: ${JSON.stringify(body)}`);
    if (body.rejected.length > 0) throw new Error(`files refused: ${JSON.stringify(body.rejected)}`);
    accepted.push(...body.documents);
  }
  return accepted;
}

interface IngestionState {
  status: string;
  chunksTotal: number;
  chunksEmbedded: number;
  embeddingRequests: number;
  error: string | null;
}

/**
 * Waits until every ingestion is ready or failed, polling one unfinished ingestion at a time (every
 * 100 ms), so that the polling itself adds little load to the process being measured.
 */
async function waitAll(instance: BenchInstance, kbId: string, accepted: Accepted[], label: string) {
  const progress = bar(label, accepted.length);
  const states = new Map<string, IngestionState>();
  const read = (a: Accepted) =>
    api<IngestionState>(instance, `/v1/knowledge-bases/${kbId}/ingestions/${a.ingestionId}`);
  const finished = (s?: IngestionState) => s?.status === 'ready' || s?.status === 'failed';
  for (const a of accepted) {
    for (;;) {
      const state = await read(a);
      states.set(a.ingestionId, state);
      if (finished(state)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    progress.increment(1, {
      detail: `${[...states.values()].reduce((n, s) => n + s.chunksTotal, 0)} chunks`,
    });
  }
  progress.stop();
  const failed = [...states.entries()].filter(([, s]) => s.status === 'failed');
  if (failed.length > 0) throw new Error(`ingestions failed: ${JSON.stringify(failed)}`);
  return [...states.values()];
}

interface Passage {
  documentName: string;
  text: string;
}

async function main(): Promise<void> {
  const program = new Command('bench:rag')
    .description(
      'Ingest a folder, re-ingest it unchanged, and measure retrieval on a QA file (vector, full text, hybrid)',
    )
    .requiredOption('--docs <dir>', 'folder of documents (Markdown, text, HTML, PDF)')
    .requiredOption(
      '--qa <jsonl>',
      'questions: {doc, question, answer} per line; doc = file name of the answer document',
    )
    .option('--out <file>', 'JSON report', 'bench/reports/rag.json')
    .option('--k <n>', 'passages per question for the top-k figures', (v) => Number(v), 5)
    .option('--depth <n>', 'passages retrieved per question (MRR is 0 past it)', (v) => Number(v), 10)
    .option(
      '--database-url <url>',
      'an existing PostgreSQL database to run on instead of the embedded PGlite (migrated at boot; ' +
        'without pgvector only full-text search runs, and the report says so)',
    )
    .parse();
  const options = program.opts<Options>();
  const files = readdirSync(options.docs)
    .filter((f) => SUPPORTED_EXTENSIONS.some((e) => f.toLowerCase().endsWith(e)))
    .map((f) => join(options.docs, f))
    .filter((f) => statSync(f).isFile())
    .sort();
  const questions = await readJsonl<QaItem>(options.qa);
  console.log(`${files.length} documents in ${options.docs}; ${questions.length} questions in ${options.qa}`);

  const instance = await startBenchInstance(
    { LOG_LEVEL: 'warn', ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {}) },
    'bench-rag',
  );
  try {
    const embeddings = countEmbeddings(instance.running.app.get(EmbeddingsService));
    const model = await instance.running.app.get(EmbeddingsService).describe();
    const kb = await api<{ id: string }>(instance, '/v1/knowledge-bases', { name: `rag-${Date.now()}` });

    // 1. Ingest.
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const first = await waitAll(instance, kb.id, await upload(instance, kb.id, files), 'ingest');
    const ingestMs = performance.now() - t0;
    const cpu1 = process.cpuUsage(cpu0);
    const chunks = first.reduce((n, s) => n + s.chunksTotal, 0);
    const ingestCalls = embeddings.calls;
    const ingestTexts = embeddings.texts;

    // 2. Re-ingest the same files.
    const callsBefore = embeddings.calls;
    const second = await upload(instance, kb.id, files);
    const secondStates = await waitAll(instance, kb.id, second, 're-ingest');
    const reingestEmbeddingCalls = embeddings.calls - callsBefore;
    const reingestUnchanged = second.filter((a) => a.unchanged).length;

    // 3. Questions, every method.
    const ranks: Record<RetrievalMode, number[]> = { hybrid: [], vector: [], fullText: [] };
    const answered: Record<RetrievalMode, boolean[]> = { hybrid: [], vector: [], fullText: [] };
    const misses: { id?: string; mode: RetrievalMode; question: string; doc: string; top: string[] }[] = [];
    // A method that cannot run here (vector and hybrid on a server without pgvector): why, and skipped.
    const unavailable: Partial<Record<RetrievalMode, string>> = {};
    const perQuestion: {
      id?: string;
      doc: string;
      rank: Partial<Record<RetrievalMode, number>>;
      answered: Partial<Record<RetrievalMode, boolean>>;
    }[] = [];
    const progress = bar('questions', questions.length);
    for (const q of questions) {
      const answerWords = contentWords(q.answer);
      const row: (typeof perQuestion)[number] = { id: q.id, doc: q.doc, rank: {}, answered: {} };
      perQuestion.push(row);
      for (const mode of MODES) {
        if (unavailable[mode]) continue;
        const result = await api<{ passages: Passage[]; mode: RetrievalMode; degraded?: string }>(
          instance,
          `/v1/knowledge-bases/${kb.id}/search`,
          { query: q.question, k: options.depth, mode },
        );
        if (result.mode !== mode) {
          if (!result.degraded) throw new Error(`asked for ${mode} retrieval, ${result.mode} ran`);
          unavailable[mode] = `${result.mode} ran instead: ${result.degraded}`;
          continue;
        }
        const rank = result.passages.findIndex((p) => p.documentName === q.doc) + 1;
        ranks[mode].push(rank);
        answered[mode].push(
          result.passages.slice(0, options.k).some((p) => holdsAnswer(p.text, answerWords)),
        );
        row.rank[mode] = rank;
        row.answered[mode] = answered[mode][answered[mode].length - 1];
        if (rank === 0 || rank > options.k) {
          misses.push({
            id: q.id,
            mode,
            question: q.question,
            doc: q.doc,
            top: result.passages.slice(0, 3).map((p) => p.documentName),
          });
        }
      }
      progress.increment();
    }
    progress.stop();

    const figures = (mode: RetrievalMode): MethodFigures | { unavailable: string } => {
      if (unavailable[mode]) return { unavailable: unavailable[mode] };
      const r = ranks[mode];
      const n = r.length || 1;
      return {
        recallAt1: round(r.filter((x) => x === 1).length / n, 4),
        recallAt5: round(r.filter((x) => x >= 1 && x <= options.k).length / n, 4),
        mrr: round(r.reduce((s, x) => s + (x > 0 ? 1 / x : 0), 0) / n, 4),
        answerRecallAt5: round(answered[mode].filter(Boolean).length / n, 4),
      };
    };
    const ingestSeconds = ingestMs / 1000;
    const summary = {
      hybrid: figures('hybrid'),
      vector: figures('vector'),
      fullText: figures('fullText'),
      reingestEmbeddingCalls,
      ingest: {
        documentsPerSecond: round(files.length / ingestSeconds, 2),
        chunksPerSecond: round(chunks / ingestSeconds, 1),
      },
    };
    const report = {
      summary,
      database: options.databaseUrl ? 'external PostgreSQL (--database-url)' : 'embedded PGlite + pgvector',
      data: {
        docs: resolve(options.docs),
        qa: resolve(options.qa),
        documents: files.length,
        questions: questions.length,
      },
      embeddingModel: model,
      ingest: {
        documents: files.length,
        chunks,
        wallMs: round(ingestMs, 0),
        cpuMsPerDocument: round((cpu1.user + cpu1.system) / 1000 / files.length, 1),
        embeddingCalls: ingestCalls,
        embeddedTexts: ingestTexts,
        embeddingRequestsRecorded: first.reduce((n, s) => n + s.embeddingRequests, 0),
      },
      reingest: {
        embeddingCalls: reingestEmbeddingCalls,
        unchangedDocuments: reingestUnchanged,
        embeddingRequestsRecorded: secondStates.reduce((n, s) => n + s.embeddingRequests, 0),
      },
      retrieval: { k: options.k, depth: options.depth, note: 'MRR counts ranks up to depth; 0 beyond' },
      misses,
      perQuestion,
    };

    const table = (['hybrid', 'vector', 'fullText'] as const).map((m) => ({ method: m, ...summary[m] }));
    console.log(
      `\ningest: ${files.length} documents, ${chunks} chunks in ${round(ingestSeconds, 2)} s ` +
        `(${summary.ingest.documentsPerSecond} documents/s, ${summary.ingest.chunksPerSecond} chunks/s, ` +
        `${report.ingest.cpuMsPerDocument} CPU ms/document); ${ingestCalls} embedding calls for ${ingestTexts} texts ` +
        `(${model.model}, ${model.dimension} dimensions)`,
    );
    console.log(
      `re-ingest unchanged: ${reingestEmbeddingCalls} embedding calls; ${reingestUnchanged}/${files.length} documents answered unchanged`,
    );
    console.table(table);
    mkdirSync(dirname(options.out), { recursive: true });
    writeFileSync(options.out, JSON.stringify(report, null, 2));
    console.log(`report: ${options.out}`);
  } finally {
    await instance.close();
  }
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(1);
    },
  );
}
