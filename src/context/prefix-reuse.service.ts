import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import { InferenceConfig } from '../config/inference.config';
import { RedisConfig } from '../config/redis.config';
import { REDIS } from '../redis/redis.module';

/** The backend's own prefix-reuse figure for one prompt. */
export interface PrefixReuse {
  /** Tokens of the longest block-aligned prefix this prompt shares with the conversation's previous prompt. */
  reusableTokens: number;
  /** Tokens of the previous prompt, or null for the first prompt of the conversation (or after the TTL). */
  previousPromptTokens: number | null;
}

/** Hash characters kept per block in the stored chain: 48 bits, ample to compare two prompts of one conversation. */
export const STORED_HASH_CHARS = 8;

/** A chain as stored: its blocks' hashes cut to STORED_HASH_CHARS, concatenated (fixed width). */
export function packChain(blockHashes: readonly string[]): string {
  let out = '';
  for (const h of blockHashes) out += h.slice(0, STORED_HASH_CHARS);
  return out;
}

/**
 * What the caller already knows of the conversation's previous prompt, because this process built it
 * (PromptChainService): the stored value can then be checked against it instead of being parsed.
 */
export interface KnownChains {
  /** This prompt's chain, packed (`packChain`), built incrementally by the caller. */
  packed: string;
  /** The previous prompt as this process stored it, and the full blocks this prompt shares with it. */
  previous: { promptTokens: number; packed: string; commonBlocks: number } | null;
}

/**
 * Prefix-reuse accounting, independent of the engine: remembers the block hash chain of each
 * conversation's last prompt (in Redis, so every API replica sees it) and measures how many tokens of
 * the next prompt repeat it, block aligned. Compared with the engine's `cached_tokens` it tells who
 * broke a prefix: a low backend figure means the backend changed the prompt (a compaction, a new
 * template version, the naive layout); a high backend figure with few cached tokens means the engine
 * lost the blocks (eviction, another replica, another tenant's salt). The engine can exceed it by the
 * previous answer's blocks, which this figure leaves out.
 *
 * Stored value: `<promptTokens>:<hashes>`, 8 characters per block, fixed width (values written with a
 * comma between hashes, by earlier versions, are still read).
 */
@Injectable()
export class PrefixReuseService {
  private static readonly ttlSeconds = 24 * 3600;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    private readonly redisConfig: RedisConfig,
    private readonly inference: InferenceConfig,
  ) {}

  /**
   * Compares a prompt with the conversation's previous prompt and remembers it as the new previous one
   * (one Redis command, SET ... GET).
   * @param promptTokens the prompt's length, tokens
   * @param blockHashes its block hash chain (`blockHashChain` over the prompt's tokens, INFERENCE_BLOCK_SIZE;
   *   the turn computes it once and routing reuses it)
   * @param known when the caller built this prompt from the previous one (PromptChainService): the
   *   packed chain and what it shares with the previous prompt. When the stored previous prompt is that
   *   one, the shared blocks are taken from `known` (no parsing, nothing proportional to the
   *   conversation in JS); otherwise (another api process served the last turn) the stored chain is
   *   compared hash by hash.
   * @throws ioredis errors when Redis fails
   */
  async record(
    conversationId: string,
    promptTokens: number,
    blockHashes: readonly string[],
    known?: KnownChains,
  ): Promise<PrefixReuse> {
    const blockSize = this.inference.INFERENCE_BLOCK_SIZE;
    const packed = known?.packed ?? packChain(blockHashes);
    const key = `${this.redisConfig.REDIS_KEY_PREFIX}prefix-chain:${conversationId}`;
    const previous = await this.redis.set(
      key,
      `${promptTokens}:${packed}`,
      'EX',
      PrefixReuseService.ttlSeconds,
      'GET',
    );
    if (!previous) return { reusableTokens: 0, previousPromptTokens: null };
    const sep = previous.indexOf(':');
    const previousPromptTokens = Number(previous.slice(0, sep));
    const mine = known?.previous;
    if (mine && previous === `${mine.promptTokens}:${mine.packed}`)
      return { reusableTokens: mine.commonBlocks * blockSize, previousPromptTokens };
    return {
      reusableTokens: commonStoredBlocks(packed, previous.slice(sep + 1)) * blockSize,
      previousPromptTokens,
    };
  }
}

/** Leading blocks a packed chain shares with a stored one (fixed width, or comma-separated as once written). */
function commonStoredBlocks(packed: string, stored: string): number {
  const theirs = stored.includes(',') ? packChain(stored.split(',')) : stored;
  const block = (chain: string, i: number): string =>
    chain.slice(i * STORED_HASH_CHARS, (i + 1) * STORED_HASH_CHARS);
  const n = Math.min(packed.length, theirs.length) / STORED_HASH_CHARS;
  let i = 0;
  while (i < n && block(packed, i) === block(theirs, i)) i++;
  return i;
}
