/**
 * A multinomial logistic (softmax) regression over message embeddings, trained on the agents'
 * examples: the trained half of the embedding classifier (docs/agents.md, "Trained on the examples").
 *
 * Training minimises the mean cross-entropy plus `l2` x ||W||^2 / 2 (the bias is not penalised) by
 * full-batch Adam (Kingma & Ba 2015). The gradient of that loss is closed-form, X^T (softmax(XW) - Y) / n
 * + l2 W, so training needs only matrix products and a softmax: they run on TensorFlow.js, the runtime
 * the in-process sentence model already loads (`@energetic-ai/core`, WebAssembly backend; it registers no
 * gradient functions, hence the explicit gradient). Prediction is a plain dot product per class, so a
 * routing decision never waits for TensorFlow.js.
 */

/** Training settings (defaults chosen on a development split of banking77, see docs/agents.md). */
export interface SoftmaxTrainingOptions {
  /** L2 penalty on the weights. */
  l2: number;
  /** Full-batch Adam steps. */
  epochs: number;
  /** Adam step size. */
  learningRate: number;
  /** Steps run between two yields to the event loop (training never holds it for the whole run). */
  stepsPerYield: number;
}

export const DEFAULT_SOFTMAX_TRAINING: SoftmaxTrainingOptions = {
  l2: 1e-5,
  epochs: 150,
  learningRate: 0.1,
  stepsPerYield: 10,
};

/** A TensorFlow.js tensor, as far as training uses one. */
interface Tensor {
  dispose(): void;
  data(): Promise<Float32Array | Int32Array | Uint8Array>;
}
type Operand = Tensor | number;

/**
 * The TensorFlow.js functions training uses. `@energetic-ai/core` re-exports @tensorflow/tfjs-core, whose
 * type declarations it does not install, so they are declared here (signatures as in tfjs-core 4.x).
 */
interface Tf {
  ready(): Promise<void>;
  tidy<T extends Tensor | Tensor[]>(fn: () => T): T;
  tensor1d(values: number[], dtype: 'int32' | 'float32'): Tensor;
  tensor2d(values: Float32Array, shape: [number, number]): Tensor;
  zeros(shape: number[]): Tensor;
  fill(shape: number[], value: number): Tensor;
  concat(tensors: Tensor[], axis: number): Tensor;
  oneHot(indices: Tensor, depth: number): Tensor;
  cast(x: Tensor, dtype: 'float32'): Tensor;
  transpose(x: Tensor): Tensor;
  matMul(a: Tensor, b: Tensor): Tensor;
  softmax(logits: Tensor): Tensor;
  add(a: Tensor, b: Operand): Tensor;
  sub(a: Tensor, b: Operand): Tensor;
  mul(a: Tensor, b: Operand): Tensor;
  div(a: Tensor, b: Operand): Tensor;
  square(x: Tensor): Tensor;
  sqrt(x: Tensor): Tensor;
}

/** TensorFlow.js as bundled by `@energetic-ai/core`, required lazily (only a trained classifier needs it). */
async function tensorflow(): Promise<Tf> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tf = require('@energetic-ai/core') as unknown as Tf;
  await tf.ready();
  return tf;
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
   * @throws Error when TensorFlow.js cannot be loaded
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

    const tf = await tensorflow();
    const started = performance.now();
    const { beta1, beta2, epsilon } = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };
    const X = tf.tensor2d(x, [n, cols]);
    const XT = tf.transpose(X);
    const Y = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(Array.from(labels), 'int32'), classes), 'float32'));
    // The penalty: l2 for the weights, 0 for the bias row.
    const penalty = tf.tidy(() =>
      tf.concat([tf.fill([dimension, classes], opts.l2), tf.zeros([1, classes])], 0),
    );
    let W = tf.zeros([cols, classes]);
    let m = tf.zeros([cols, classes]);
    let v = tf.zeros([cols, classes]);
    try {
      for (let step = 1; step <= opts.epochs; step++) {
        // (The bundled TensorFlow.js has no chaining methods on tensors: every op is a function.)
        const [W2, m2, v2] = tf.tidy(() => {
          const p = tf.softmax(tf.matMul(X, W));
          const g = tf.add(tf.div(tf.matMul(XT, tf.sub(p, Y)), n), tf.mul(W, penalty));
          const mNext = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
          const vNext = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
          const mHat = tf.div(mNext, 1 - beta1 ** step);
          const vHat = tf.div(vNext, 1 - beta2 ** step);
          const update = tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), epsilon)), opts.learningRate);
          return [tf.sub(W, update), mNext, vNext];
        });
        W.dispose();
        m.dispose();
        v.dispose();
        [W, m, v] = [W2, m2, v2];
        if (step % opts.stepsPerYield === 0) await new Promise((r) => setImmediate(r));
      }
      // Stored class-major (row c = class c), so a prediction reads each class's weights contiguously.
      const transposed = tf.transpose(W);
      const weights = (await transposed.data()) as Float32Array;
      transposed.dispose();
      return new SoftmaxIntentModel(weights, classes, dimension, performance.now() - started);
    } finally {
      for (const t of [X, XT, Y, penalty, W, m, v]) t.dispose();
    }
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
