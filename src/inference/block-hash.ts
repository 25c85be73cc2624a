import { createHash } from 'node:crypto';

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
 * @param tokenIds prompt token ids
 * @param blockSize tokens per block (vLLM `--block-size`)
 * @returns one base64url sha256 (truncated to 128 bits) per full block
 */
export function blockHashChain(tokenIds: readonly number[], blockSize: number, salt?: string): string[] {
  const hashes: string[] = [];
  const full = Math.floor(tokenIds.length / blockSize);
  let parent = '';
  for (let b = 0; b < full; b++) {
    const h = createHash('sha256');
    h.update(parent);
    h.update(b === 0 && salt !== undefined ? `|salt:${salt}|` : '|');
    h.update(Buffer.from(Int32Array.from(tokenIds.slice(b * blockSize, (b + 1) * blockSize)).buffer));
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
