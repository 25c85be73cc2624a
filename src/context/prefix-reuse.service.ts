import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import { InferenceConfig } from '../config/inference.config';
import { RedisConfig } from '../config/redis.config';
import { commonPrefixBlocks } from '../inference/block-hash';
import { REDIS } from '../redis/redis.module';

/** The backend's own prefix-reuse figure for one prompt. */
export interface PrefixReuse {
  /** Tokens of the longest block-aligned prefix this prompt shares with the conversation's previous prompt. */
  reusableTokens: number;
  /** Tokens of the previous prompt, or null for the first prompt of the conversation (or after the TTL). */
  previousPromptTokens: number | null;
}

/**
 * Prefix-reuse accounting, independent of the engine: remembers the block hash chain of each
 * conversation's last prompt (in Redis, so every API replica sees it) and measures how many tokens of
 * the next prompt repeat it, block aligned. Compared with the engine's `cached_tokens` it tells who
 * broke a prefix: a low backend figure means the backend changed the prompt (a compaction, a new
 * template version, the naive layout); a high backend figure with few cached tokens means the engine
 * lost the blocks (eviction, another replica, another tenant's salt). The engine can exceed it by the
 * previous answer's blocks, which this figure leaves out.
 */
@Injectable()
export class PrefixReuseService {
  /** Hash characters kept per block: 48 bits, ample to compare two prompts of one conversation. */
  private static readonly hashChars = 8;
  private static readonly ttlSeconds = 24 * 3600;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    private readonly redisConfig: RedisConfig,
    private readonly inference: InferenceConfig,
  ) {}

  /**
   * Compares a prompt with the conversation's previous prompt and remembers it as the new previous one.
   * @param promptTokens the prompt's length, tokens
   * @param blockHashes its block hash chain (`blockHashChain` over the prompt's tokens, INFERENCE_BLOCK_SIZE;
   *   the turn computes it once and routing reuses it)
   */
  async record(
    conversationId: string,
    promptTokens: number,
    blockHashes: readonly string[],
  ): Promise<PrefixReuse> {
    const blockSize = this.inference.INFERENCE_BLOCK_SIZE;
    const chain = blockHashes.map((h) => h.slice(0, PrefixReuseService.hashChars));
    const key = `${this.redisConfig.REDIS_KEY_PREFIX}prefix-chain:${conversationId}`;
    const value = `${promptTokens}:${chain.join(',')}`;
    const previous = await this.redis.set(key, value, 'EX', PrefixReuseService.ttlSeconds, 'GET');
    if (!previous) return { reusableTokens: 0, previousPromptTokens: null };
    const sep = previous.indexOf(':');
    const previousChain = previous
      .slice(sep + 1)
      .split(',')
      .filter((h) => h !== '');
    return {
      reusableTokens: commonPrefixBlocks(chain, previousChain) * blockSize,
      previousPromptTokens: Number(previous.slice(0, sep)),
    };
  }
}
