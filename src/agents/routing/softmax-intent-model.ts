import { resolve } from 'node:path';
import { Piscina } from 'piscina';

/**
 * A multinomial logistic (softmax) regression over message embeddings, trained on the agents'
 * examples: the trained half of the embedding classifier (docs/agents.md, "Trained on the examples").
 *
 * Training minimises the mean cross-entropy plus `l2` x ||W||^2 / 2 (the bias is not penalised) by
 * full-batch Adam (Kingma & Ba 2015) on TensorFlow.js (`@energetic-ai/core`, WebAssembly: the runtime of
 * the in-process sentence model), on a worker thread of its own (softmax-train.worker.cjs), so the
 * event loop stays free. Prediction is a plain dot product per class on the calling thread.
 */

/** Training settings (defaults chosen on a development split of banking77, see docs/agents.md). */
export interface SoftmaxTrainingOptions {
  /** L2 penalty on the weights. */
  l2: number;
  /** Full-batch Adam steps. */
  epochs: number;
  /** Adam step size. */
  learningRate: number;
}

export const DEFAULT_SOFTMAX_TRAINING: SoftmaxTrainingOptions = {
  l2: 1e-5,
  epochs: 150,
  learningRate: 0.1,
};

interface TrainingTask extends SoftmaxTrainingOptions {
  x: Float32Array;
  labels: Int32Array;
  n: number;
  dimension: number;
  classes: number;
}

/**
 * A training thread: started for one training and destroyed after it (an index is trained once per
 * agent set, so neither the thread nor its TensorFlow.js stays resident).
 */
function trainingThread(): Piscina<TrainingTask, Float32Array> {
  return new Piscina<TrainingTask, Float32Array>({
    filename: resolve(__dirname, 'softmax-train.worker.cjs'),
    minThreads: 1,
    maxThreads: 1,
  });
}

/** A trained softmax regression: `classes` x (`dimension` + 1 bias) weights. */
export class SoftmaxIntentModel {
  private constructor(
    /** Row c holds class c's weights, then its bias. */
    private readonly weights: Float32Array,
    readonly classes: number,
    readonly dimension: number,
    /** Wall time the training took, ms. */
    readonly trainingMs: number,
  ) {}

  /**
   * Trains on labelled vectors.
   * @param vectors training vectors, all of one length
   * @param labels class of each vector, 0 .. classes - 1
   * @throws RangeError when the inputs are empty, of different lengths, or a label is out of range
   * @throws Error when the training thread or TensorFlow.js cannot be started
   */
  static async train(
    vectors: readonly (readonly number[] | Float64Array)[],
    labels: readonly number[],
    classes: number,
    options: Partial<SoftmaxTrainingOptions> = {},
  ): Promise<SoftmaxIntentModel> {
    const opts = { ...DEFAULT_SOFTMAX_TRAINING, ...options };
    const n = vectors.length;
    const dimension = vectors[0]?.length ?? 0;
    if (n === 0 || dimension === 0) throw new RangeError('softmax regression: no training vectors');
    if (labels.length !== n)
      throw new RangeError(`softmax regression: ${n} vectors but ${labels.length} labels`);
    if (!(classes >= 2)) throw new RangeError('softmax regression: needs at least two classes');
    const cols = dimension + 1;
    const x = new Float32Array(n * cols);
    vectors.forEach((v, i) => {
      if (v.length !== dimension)
        throw new RangeError(`softmax regression: vectors of ${v.length} and ${dimension} dimensions`);
      x.set(v, i * cols);
      x[i * cols + dimension] = 1;
    });
    for (const l of labels)
      if (!Number.isInteger(l) || l < 0 || l >= classes)
        throw new RangeError(`softmax regression: label ${l} outside 0..${classes - 1}`);
    const started = performance.now();
    const thread = trainingThread();
    let weights: Float32Array;
    try {
      weights = await thread.run({
        x,
        labels: Int32Array.from(labels),
        n,
        dimension,
        classes,
        l2: opts.l2,
        epochs: opts.epochs,
        learningRate: opts.learningRate,
      });
    } finally {
      await thread.destroy();
    }
    return new SoftmaxIntentModel(weights, classes, dimension, performance.now() - started);
  }

  /**
   * Log-probability of each class for one vector.
   * @throws RangeError when `vector` has another length than the training vectors
   */
  logProbabilities(vector: ArrayLike<number>): Float64Array {
    if (vector.length !== this.dimension)
      throw new RangeError(`vector has ${vector.length} dimensions, the model ${this.dimension}`);
    const cols = this.dimension + 1;
    const z = new Float64Array(this.classes);
    let max = -Infinity;
    for (let c = 0; c < this.classes; c++) {
      const row = c * cols;
      let s = this.weights[row + this.dimension];
      for (let d = 0; d < this.dimension; d++) s += this.weights[row + d] * vector[d];
      z[c] = s;
      if (s > max) max = s;
    }
    let sum = 0;
    for (let c = 0; c < this.classes; c++) sum += Math.exp(z[c] - max);
    const logSum = max + Math.log(sum);
    for (let c = 0; c < this.classes; c++) z[c] -= logSum;
    return z;
  }
}

/**
 * Weight of the nearest-neighbour index's rank (cosine scale) added to the model's log-probability
 * when the two are combined (docs/agents.md): 0.1 of cosine counts as a likelihood ratio of e^1.5.
 * Chosen on a development split of banking77 (flat from 10 to 20).
 */
export const INDEX_RANK_WEIGHT = 15;
