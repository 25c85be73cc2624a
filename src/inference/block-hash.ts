import { createHash } from 'node:crypto';

/** Token ids as a plain array or an Int32Array (prompt fingerprints are kept as the latter). */
export type TokenIds = readonly number[] | Int32Array;

/**
 * Hash chain over the FULL blocks of a token sequence, as vLLM's automatic prefix caching keys its
 * KV blocks (docs.vllm.ai, "Automatic Prefix Caching"): block i's hash covers its token ids and the
 * hash of block i-1, so equal hashes at position i mean equal token prefixes up to the end of block i.
 * `salt` is mixed into the first block only, like vLLM's `cache_salt`: two tenants never share a chain.
 * A trailing partial block has no hash (the engine does not cache it either).
 *
 * These hashes are the backend's own bookkeeping (prefix routing, reuse accounting), not the
 * engine's keys: they only need to be equal exactly when the token prefixes are.
 *
 * @param tokenIds prompt token ids (int32: the fingerprint's template placeholders are negative)
 * @param blockSize tokens per block (vLLM `--block-size`)
 * @returns one base64url sha256 (truncated to 128 bits, 22 characters) per full block
 */
export function blockHashChain(tokenIds: TokenIds, blockSize: number, salt?: string): string[] {
  return extendBlockHashChain([], tokenIds, blockSize, salt);
}

/**
 * `blockHashChain(tokenIds, blockSize, salt)` when its first `kept.length` hashes are already known:
 * only the blocks after them are hashed. `kept` must be the chain of a sequence whose first
 * `kept.length * blockSize` tokens equal `tokenIds`' (same salt) — the caller's promise, not checked.
 * A turn extends its conversation's previous prompt chain this way, so its hashing is proportional to
 * the new tokens, not to the conversation.
 * @returns a new array: `kept`, then one hash per further full block
 */
export function extendBlockHashChain(
  kept: readonly string[],
  tokenIds: TokenIds,
  blockSize: number,
  salt?: string,
): string[] {
  const full = Math.floor(tokenIds.length / blockSize);
  const hashes = kept.slice(0, full);
  if (hashes.length === full) return hashes;
  const ids = tokenIds instanceof Int32Array ? tokenIds : Int32Array.from(tokenIds);
  const bytes = Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength);
  const blockBytes = blockSize * Int32Array.BYTES_PER_ELEMENT;
  let parent = hashes.length > 0 ? hashes[hashes.length - 1] : '';
  for (let b = hashes.length; b < full; b++) {
    const h = createHash('sha256');
    h.update(parent);
    h.update(b === 0 && salt !== undefined ? `|salt:${salt}|` : '|');
    h.update(bytes.subarray(b * blockBytes, (b + 1) * blockBytes));
    parent = h.digest('base64url').slice(0, 22);
    hashes.push(parent);
  }
  return hashes;
}

/** Number of leading hashes two chains share (block-aligned common prefix, in blocks). */
export function commonPrefixBlocks(a: readonly string[], b: readonly string[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
