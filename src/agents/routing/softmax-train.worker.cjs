// @ts-check
/**
 * Trains a softmax regression (a piscina task function; see softmax-intent-model.ts) on a worker thread:
 * TensorFlow.js runs each step synchronously, which on the main thread would hold every request of the
 * process. Full-batch Adam (Kingma & Ba 2015) on the mean cross-entropy + l2 x ||W||^2 / 2 (the bias row
 * not penalised), with the closed-form gradient X^T (softmax(XW) - Y) / n + l2 W: the TensorFlow.js
 * bundled by `@energetic-ai/core` registers no gradient functions. Plain CommonJS so that the same file
 * runs from src (tests) and dist.
 */
const { move } = require('piscina');

/**
 * A TensorFlow.js tensor, as far as training uses one.
 * @typedef {{ dispose(): void, data(): Promise<Float32Array> }} Tensor
 */
/**
 * The TensorFlow.js functions training uses. `@energetic-ai/core` re-exports @tensorflow/tfjs-core, whose
 * type declarations it does not install, so they are declared here (signatures as in tfjs-core 4.x).
 * @typedef {{
 *   ready(): Promise<void>,
 *   tidy<T>(fn: () => T): T,
 *   tensor1d(values: number[], dtype: 'int32' | 'float32'): Tensor,
 *   tensor2d(values: Float32Array, shape: [number, number]): Tensor,
 *   zeros(shape: number[]): Tensor,
 *   fill(shape: number[], value: number): Tensor,
 *   concat(tensors: Tensor[], axis: number): Tensor,
 *   oneHot(indices: Tensor, depth: number): Tensor,
 *   cast(x: Tensor, dtype: 'float32'): Tensor,
 *   transpose(x: Tensor): Tensor,
 *   matMul(a: Tensor, b: Tensor): Tensor,
 *   softmax(logits: Tensor): Tensor,
 *   add(a: Tensor, b: Tensor | number): Tensor,
 *   sub(a: Tensor, b: Tensor | number): Tensor,
 *   mul(a: Tensor, b: Tensor | number): Tensor,
 *   div(a: Tensor, b: Tensor | number): Tensor,
 *   square(x: Tensor): Tensor,
 *   sqrt(x: Tensor): Tensor,
 * }} Tf
 */

/**
 * @param {{ x: Float32Array, labels: Int32Array, n: number, dimension: number, classes: number,
 *   l2: number, epochs: number, learningRate: number }} task rows of `x` are the training vectors, each
 *   followed by a 1 (the bias input): n x (dimension + 1)
 * @returns {Promise<unknown>} the weights class-major, classes x (dimension + 1), as a Float32Array moved
 *   (not copied) to the caller
 */
module.exports = async function train(task) {
  const { x, labels, n, dimension, classes, l2, epochs, learningRate } = task;
  const tf = /** @type {Tf} */ (/** @type {unknown} */ (require('@energetic-ai/core')));
  await tf.ready();
  const beta1 = 0.9;
  const beta2 = 0.999;
  const epsilon = 1e-8;
  const cols = dimension + 1;
  const X = tf.tensor2d(x, [n, cols]);
  const XT = tf.transpose(X);
  const Y = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(Array.from(labels), 'int32'), classes), 'float32'));
  const penalty = tf.tidy(() => tf.concat([tf.fill([dimension, classes], l2), tf.zeros([1, classes])], 0));
  let W = tf.zeros([cols, classes]);
  let m = tf.zeros([cols, classes]);
  let v = tf.zeros([cols, classes]);
  try {
    for (let step = 1; step <= epochs; step++) {
      // (The bundled TensorFlow.js has no chaining methods on tensors: every op is a function.)
      const [W2, m2, v2] = tf.tidy(() => {
        const p = tf.softmax(tf.matMul(X, W));
        const g = tf.add(tf.div(tf.matMul(XT, tf.sub(p, Y)), n), tf.mul(W, penalty));
        const mNext = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const vNext = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        const mHat = tf.div(mNext, 1 - beta1 ** step);
        const vHat = tf.div(vNext, 1 - beta2 ** step);
        const update = tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), epsilon)), learningRate);
        return /** @type {[Tensor, Tensor, Tensor]} */ ([tf.sub(W, update), mNext, vNext]);
      });
      W.dispose();
      m.dispose();
      v.dispose();
      [W, m, v] = [W2, m2, v2];
    }
    const transposed = tf.transpose(W);
    const weights = Float32Array.from(await transposed.data());
    transposed.dispose();
    return move(weights);
  } finally {
    for (const t of [X, XT, Y, penalty, W, m, v]) t.dispose();
  }
};
