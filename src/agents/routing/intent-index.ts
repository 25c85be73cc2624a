/** One intent (an agent) and the embeddings of its examples. */
export interface IntentPrototypes {
  agent: string;
  vectors: readonly (readonly number[])[];
}

/** An agent's score for one message. */
export interface IntentScore {
  agent: string;
  /** Blended cosine similarity of the message to the agent's examples (clamped to 0..1). */
  score: number;
  /**
   * What ranks the agents: here `score` minus the agent's hubness penalty (IntentRanker may add a trained
   * model's log-probability).
   */
  rank: number;
}

/**
 * Weights of the blended score. Tuned on a split of banking77 (77 intents, 10 examples each, see
 * docs/agents.md): the best example alone is noisy with lexical vectors, the centroid alone blurs
 * multi-phrasing intents; together (+ the second-best example) they beat the best example alone by
 * 2-4 points and the centroid alone by 8.
 */
export interface IntentIndexOptions {
  /** Weight of the most similar example. */
  best: number;
  /** Weight of the second most similar example (the best again when there is one example). */
  second: number;
  /** Weight of the centroid (normalised mean of the examples). */
  centroid: number;
  /**
   * Hubness correction: an intent whose centroid is close to many other intents' examples attracts
   * messages of every intent; its rank is lowered by this weight x its mean similarity to its
   * `hubNeighbours` nearest foreign examples (CSLS, Conneau et al. 2018, adapted to a few-shot set).
   */
  hubness: number;
  hubNeighbours: number;
}

export const DEFAULT_INTENT_INDEX_OPTIONS: IntentIndexOptions = {
  best: 0.4,
  second: 0.2,
  centroid: 0.4,
  hubness: 0.15,
  hubNeighbours: 10,
};

interface Intent {
  agent: string;
  examples: Float64Array[];
  centroid: Float64Array;
  hub: number;
}

/**
 * Few-shot intent scoring over embeddings: per agent, its example vectors and their centroid.
 * Pure and synchronous; embeddings come from elsewhere. Vectors are L2-normalised on the way in,
 * so any embedding model works (the dot product is the cosine).
 */
export class IntentIndex {
  private constructor(
    private readonly intents: Intent[],
    private readonly options: IntentIndexOptions,
    readonly dimension: number,
  ) {}

  /**
   * @throws RangeError when vectors differ in length or an intent has no (non-zero) vector
   */
  static build(
    prototypes: readonly IntentPrototypes[],
    options: Partial<IntentIndexOptions> = {},
  ): IntentIndex {
    const opts = { ...DEFAULT_INTENT_INDEX_OPTIONS, ...options };
    const dimension = prototypes[0]?.vectors[0]?.length ?? 0;
    const intents: Intent[] = prototypes.map(({ agent, vectors }) => {
      const examples = vectors
        .map((v) => {
          if (v.length !== dimension)
            throw new RangeError(`intent ${agent}: vectors of ${v.length} and ${dimension} dimensions`);
          return normalised(v);
        })
        .filter((v) => v !== null);
      if (examples.length === 0) throw new RangeError(`intent ${agent} has no non-zero example vector`);
      const sum = new Float64Array(dimension);
      for (const e of examples) for (let i = 0; i < dimension; i++) sum[i] += e[i];
      return { agent, examples, centroid: normalised(sum) ?? sum, hub: 0 };
    });
    for (const intent of intents) intent.hub = hubness(intent, intents, opts.hubNeighbours);
    return new IntentIndex(intents, opts, dimension);
  }

  /** Agents in the index. */
  get agents(): string[] {
    return this.intents.map((i) => i.agent);
  }

  /**
   * Scores every intent for one message vector, best first.
   * @throws RangeError when `vector` has another length than the index
   */
  score(vector: readonly number[]): IntentScore[] {
    if (vector.length !== this.dimension) {
      throw new RangeError(`message vector has ${vector.length} dimensions, the index ${this.dimension}`);
    }
    const q = normalised(vector);
    if (!q)
      return this.intents.map((i) => ({ agent: i.agent, score: 0, rank: -this.options.hubness * i.hub }));
    const { best, second, centroid, hubness: hubWeight } = this.options;
    const scores = this.intents.map((intent) => {
      let s1 = -1;
      let s2 = -1;
      for (const e of intent.examples) {
        const s = dot(q, e);
        if (s > s1) [s1, s2] = [s, s1];
        else if (s > s2) s2 = s;
      }
      if (intent.examples.length === 1) s2 = s1;
      const blended = best * s1 + second * s2 + centroid * dot(q, intent.centroid);
      const score = Math.min(1, Math.max(0, blended / (best + second + centroid)));
      return { agent: intent.agent, score, rank: score - hubWeight * intent.hub };
    });
    return scores.sort((a, b) => b.rank - a.rank || b.score - a.score);
  }
}

/** Mean similarity of an intent's centroid to its `k` nearest examples of other intents (0 when alone). */
function hubness(intent: Intent, all: readonly Intent[], k: number): number {
  const sims: number[] = [];
  for (const other of all) {
    if (other === intent) continue;
    for (const e of other.examples) sims.push(dot(intent.centroid, e));
  }
  if (sims.length === 0 || k <= 0) return 0;
  sims.sort((a, b) => b - a);
  const top = sims.slice(0, k);
  return top.reduce((a, b) => a + b, 0) / top.length;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** The unit vector of `v`, or null for the zero vector. */
export function normalised(v: ArrayLike<number>): Float64Array | null {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += v[i] * v[i];
  if (n === 0) return null;
  const inv = 1 / Math.sqrt(n);
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i] * inv;
  return out;
}

/**
 * Picks `k` examples that best represent the whole set: greedy facility location (maximise the sum
 * over all examples of their similarity to the nearest picked one; a (1 - 1/e) approximation,
 * Nemhauser et al. 1978). Representative examples route far better than `k` random ones
 * (docs/agents.md). Deterministic: ties go to the earlier example.
 * @returns indices into `vectors`, in the order picked (all of them when k >= vectors.length)
 */
export function representativeExamples(vectors: readonly (readonly number[])[], k: number): number[] {
  const n = vectors.length;
  if (k >= n) return vectors.map((_, i) => i);
  const units = vectors.map((v) => normalised(v) ?? new Float64Array(v.length));
  const sim = units.map((a) => units.map((b) => Math.max(0, dot(a, b))));
  const covered = new Float64Array(n);
  const picked: number[] = [];
  const isPicked = new Uint8Array(n);
  while (picked.length < k) {
    let bestIndex = -1;
    let bestGain = -1;
    for (let i = 0; i < n; i++) {
      if (isPicked[i]) continue;
      let gain = 0;
      const row = sim[i];
      for (let j = 0; j < n; j++) if (row[j] > covered[j]) gain += row[j] - covered[j];
      if (gain > bestGain) [bestIndex, bestGain] = [i, gain];
    }
    picked.push(bestIndex);
    isPicked[bestIndex] = 1;
    const row = sim[bestIndex];
    for (let j = 0; j < n; j++) if (row[j] > covered[j]) covered[j] = row[j];
  }
  return picked;
}
