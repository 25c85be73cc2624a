/**
 * Deterministic lexical embeddings: a pure function of the text, no model and no download.
 *
 * Features, each hashed into `dimension` buckets with a sign (the "hashing trick"):
 * - word unigrams of lightly stemmed words (stopwords kept at a quarter weight, negations at full);
 * - word bigrams over the content words (stopwords skipped), so "reset password" is one feature;
 * - character 3-grams of each content word with boundary marks (`#pass`, ..., `ord#`), which match
 *   morphological variants and typos that the stemmer misses.
 * Term frequency is sublinear (1 + ln tf); there is no idf (no corpus). Each feature group is
 * L2-normalised, weighted (words 1.0, bigrams 0.3, character grams 1.0) and the sum L2-normalised,
 * so the dot product of two embeddings is their cosine similarity. The weights were picked on
 * ../shared/data/semantic-cache (see docs/simulator.md; shared by the simulator and the local embedder): bigrams help word order a little but
 * over-weighting them hurts paraphrases that reorder words.
 *
 * Limits: it measures shared vocabulary, not meaning. Synonyms with no shared characters ("car" /
 * "automobile") are unrelated to it; a negation or a changed number moves the vector only a little,
 * so close-but-different questions score high (callers must guard against them); English-centric
 * stemming and stopwords; hash collisions add small noise at low dimensions. Empty or
 * punctuation-only text gives the zero vector (cosine 0 with everything).
 */
export function lexicalEmbedding(text: string, dimension: number): number[] {
  if (!Number.isInteger(dimension) || dimension <= 0) {
    throw new RangeError(`lexicalEmbedding: dimension ${dimension} must be a positive integer`);
  }
  const words = tokenizeWords(text);
  const unigrams = new Map<string, number>();
  const bigrams = new Map<string, number>();
  const charGrams = new Map<string, number>();
  const content: string[] = [];
  for (const word of words) {
    const stem = stemWord(word);
    const stop = STOPWORDS.has(word);
    addCount(unigrams, `w:${stem}`, stop ? 0.25 : 1);
    if (stop) continue;
    content.push(stem);
    const marked = `#${word}#`;
    for (let i = 0; i + 3 <= marked.length; i++) addCount(charGrams, `c:${marked.slice(i, i + 3)}`, 1);
  }
  for (let i = 0; i + 1 < content.length; i++) addCount(bigrams, `b:${content[i]}_${content[i + 1]}`, 1);

  const out = new Array<number>(dimension).fill(0);
  addGroup(out, unigrams, 1.0);
  addGroup(out, bigrams, 0.3);
  addGroup(out, charGrams, 1.0);
  const norm = Math.sqrt(out.reduce((s, v) => s + v * v, 0));
  return norm === 0 ? out : out.map((v) => v / norm);
}

/** Cosine similarity of two vectors of the same length (0 when either is zero). */
export function cosineSimilarity(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new RangeError('cosineSimilarity: vectors differ in length');
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** Lowercased words with diacritics removed; "n't" becomes the word "not". */
function tokenizeWords(text: string): string[] {
  const normalized = text
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/[’‘`]/g, "'")
    .replace(/\bcan't\b/g, 'can not')
    .replace(/\bwon't\b/g, 'will not')
    .replace(/n't\b/g, ' not')
    .replace(/'(s|re|ve|ll|d|m)\b/g, '');
  return normalized.match(/[\p{L}\p{N}]+/gu) ?? [];
}

/**
 * A small suffix stemmer (a subset of Porter's step 1 plus -ly/-ation and a final -e), enough to
 * merge plural, past and progressive forms: "policies"/"policy", "changed"/"changing"/"change",
 * "cancelled"/"cancellation" (but not "cancel": character 3-grams bridge that).
 */
export function stemWord(word: string): string {
  if (word.length <= 3 || /^\p{N}+$/u.test(word)) return word;
  let w = word;
  if (w.endsWith('sses')) w = w.slice(0, -2);
  else if (w.endsWith('ies') && w.length > 4) w = `${w.slice(0, -3)}y`;
  else if (w.endsWith('s') && !w.endsWith('ss') && !w.endsWith('us') && !w.endsWith('is')) w = w.slice(0, -1);

  if (w.endsWith('ied') && w.length > 4) w = `${w.slice(0, -3)}y`;
  else if (w.endsWith('ing') && w.length > 5) w = undouble(w.slice(0, -3));
  else if (w.endsWith('ed') && w.length > 4) w = undouble(w.slice(0, -2));
  else if (w.endsWith('ation') && w.length > 8) w = undouble(w.slice(0, -5));
  else if (w.endsWith('ly') && w.length > 5) w = w.slice(0, -2);

  if (w.endsWith('e') && w.length > 4) w = w.slice(0, -1);
  return w;
}

function undouble(w: string): string {
  const n = w.length;
  // Porter: "hopping" -> "hop", but "falling" keeps "fall" (l, s, z are not undoubled).
  if (n >= 2 && w[n - 1] === w[n - 2] && !'aeiouslz'.includes(w[n - 1])) return w.slice(0, -1);
  return w;
}

function addCount(map: Map<string, number>, key: string, weight: number): void {
  map.set(key, (map.get(key) ?? 0) + weight);
}

function addGroup(out: number[], counts: Map<string, number>, groupWeight: number): void {
  if (counts.size === 0) return;
  const values: [number, number][] = [];
  let norm = 0;
  for (const [feature, tf] of counts) {
    const weight = tf >= 1 ? 1 + Math.log(tf) : tf; // sublinear tf; a lone stopword stays at 0.25
    const h = fnv1a(feature, 0x811c9dc5);
    const sign = fnv1a(feature, 0x01000193) & 1 ? 1 : -1;
    values.push([h % out.length, sign * weight]);
    norm += weight * weight;
  }
  const scale = groupWeight / Math.sqrt(norm);
  for (const [index, value] of values) out[index] += value * scale;
}

/** 32-bit FNV-1a over UTF-16 code units, as an unsigned integer. */
function fnv1a(s: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** English function words, down-weighted. Negations ("no", "not", "never", "without") are NOT here. */
const STOPWORDS = new Set(
  (
    'a about am an and any are as at be been but by can could did do does for from had has have he her here his ' +
    'how i if in into is it its just me my of on or our please she should so some than that the their them then ' +
    'there these they this those to was we were what when where which who why will with would you your'
  ).split(' '),
);
