import type { PrefixReuse, PrefixReuseService } from '../../src/context/prefix-reuse.service';
import { commonPrefixBlocks } from '../../src/inference/block-hash';

/**
 * PrefixReuseService in memory: remembers each conversation's last block hash chain and answers the
 * leading blocks the next prompt shares with it, in tokens (`blockSize` per block, INFERENCE_BLOCK_SIZE).
 */
export class FakePrefixReuse implements Pick<PrefixReuseService, 'record'> {
  readonly calls: { conversationId: string; promptTokens: number }[] = [];
  private readonly last = new Map<string, { tokens: number; hashes: readonly string[] }>();

  constructor(private readonly blockSize = 16) {}

  record(conversationId: string, promptTokens: number, blockHashes: readonly string[]): Promise<PrefixReuse> {
    this.calls.push({ conversationId, promptTokens });
    const previous = this.last.get(conversationId);
    this.last.set(conversationId, { tokens: promptTokens, hashes: blockHashes });
    if (!previous) return Promise.resolve({ reusableTokens: 0, previousPromptTokens: null });
    return Promise.resolve({
      reusableTokens: commonPrefixBlocks(blockHashes, previous.hashes) * this.blockSize,
      previousPromptTokens: previous.tokens,
    });
  }
}
