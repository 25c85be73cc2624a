import { computeBlockHashes } from './prefix-cache';

/** One request's prompt against the best earlier sequence (prompt + answer) with the same cache salt. */
export interface PrefixLimitSample {
  promptTokens: number;
  /** Tokens of the longest prefix the prompt shares with an earlier finished prompt + answer. */
  sharedTokens: number;
  /** What the engine reported as cached for the same request. */
  cachedTokens: number;
  /** The request's last user message (lets a benchmark tell a conversation's first turn from later ones). */
  lastUserMessage?: string;
}

interface Sequence {
  tokens: readonly number[];
}

/**
 * The ceiling that the prompt layout puts on prefix reuse, measured where the prompts arrive: for each
 * request, the longest token prefix its prompt shares with any earlier finished sequence (prompt followed
 * by the answer the engine gave), as an unbounded, token-granular prefix cache would serve it. A
 * conversation's next prompt normally extends its previous prompt + answer, so this is "tokens each
 * turn's prompt shares with the previous turn's prompt and answer"; whatever the layout changes
 * (a clock, a moved window, a re-rendered answer) cuts it. Shared by every replica of a cluster, so a
 * conversation that changes replica is still matched. Memory is bounded to `maxSequences` (oldest dropped).
 *
 * The block-hash index finds the deepest block-aligned match in O(blocks); the last partial block is
 * then compared token by token with that sequence.
 */
export class PrefixLimitTracker {
  private readonly samples: PrefixLimitSample[] = [];
  /** Chain hash of the first k blocks → the most recent sequence holding them. */
  private readonly byChain = new Map<string, Sequence>();
  private readonly order: { sequence: Sequence; hashes: string[] }[] = [];

  constructor(
    private readonly blockSize = 16,
    private readonly maxSequences = 20_000,
    private readonly maxSamples = 200_000,
  ) {}

  /** Tokens of `prompt` shared with the best earlier sequence of the same salt. */
  sharedPrefix(prompt: readonly number[], cacheSalt?: string): number {
    const hashes = computeBlockHashes(prompt, this.blockSize, cacheSalt);
    let best: Sequence | undefined;
    let blocks = 0;
    for (let k = 0; k < hashes.length; k++) {
      const sequence = this.byChain.get(hashes[k]);
      if (!sequence) break;
      best = sequence;
      blocks = k + 1;
    }
    if (!best && hashes.length > 0) return 0;
    let shared = blocks * this.blockSize;
    if (best) {
      const limit = Math.min(prompt.length, best.tokens.length);
      while (shared < limit && prompt[shared] === best.tokens[shared]) shared++;
    }
    return shared;
  }

  /** Records one request (measured on arrival) and, once it finished, its whole sequence. */
  record(sample: PrefixLimitSample): void {
    if (this.samples.length >= this.maxSamples) this.samples.shift();
    this.samples.push(sample);
  }

  /** Remembers a finished prompt + answer as a sequence later prompts may extend. */
  remember(tokens: readonly number[], cacheSalt?: string): void {
    const sequence = { tokens };
    const hashes = computeBlockHashes(tokens, this.blockSize, cacheSalt);
    for (const h of hashes) this.byChain.set(h, sequence);
    this.order.push({ sequence, hashes });
    if (this.order.length > this.maxSequences) {
      const old = this.order.shift();
      for (const h of old?.hashes ?? []) if (this.byChain.get(h) === old?.sequence) this.byChain.delete(h);
    }
  }

  /** Every recorded sample, oldest first. */
  list(): readonly PrefixLimitSample[] {
    return this.samples;
  }
}
