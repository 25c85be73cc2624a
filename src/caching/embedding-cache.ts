import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { CachingConfig } from '../config/caching.config';
import { RedisConfig } from '../config/redis.config';
import { REDIS } from '../redis/redis.module';

/** What an embedding is cached under: the tenant, the model, the requested dimensions and the exact text. */
export interface EmbeddingKey {
  tenantId: string;
  model: string;
  /** The request's `dimensions`, or undefined for the model's full length. */
  dimensions?: number;
}

/**
 * The exact cache of `/v1/embeddings`: a vector per (tenant, model, dimensions, text), in Redis under
 * REDIS_KEY_PREFIX + `emb:{tenant}:...` with RESPONSE_CACHE_TTL_SECONDS, stored as little-endian float32
 * bytes (4 bytes per dimension; what `encoding_format: base64` sends). The text is hashed (SHA-256),
 * never stored. An embedding is a deterministic function of the model and the text, so every repeat
 * is safe to serve; the tenant is in the key all the same (a hit must not tell one tenant what another
 * embedded). On when RESPONSE_CACHE_ENABLED. Redis failures never fail a request: the engine answers.
 */
@Injectable()
export class EmbeddingCache {
  private readonly logger = new Logger(EmbeddingCache.name);
  private readonly prefix: string;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    redisConfig: RedisConfig,
    private readonly config: CachingConfig,
  ) {
    this.prefix = `${redisConfig.REDIS_KEY_PREFIX}emb:`;
  }

  get enabled(): boolean {
    return this.config.RESPONSE_CACHE_ENABLED;
  }

  private key(key: EmbeddingKey, text: string): string {
    const hash = createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 40);
    return `${this.prefix}{${key.tenantId}}:${key.model}:${key.dimensions ?? 'full'}:${hash}`;
  }

  /** The cached vectors of `texts`, in order (null where there is none, or when Redis fails). */
  async getMany(key: EmbeddingKey, texts: readonly string[]): Promise<(number[] | null)[]> {
    if (!this.enabled || texts.length === 0) return texts.map(() => null);
    try {
      const values = await this.redis.mgetBuffer(...texts.map((t) => this.key(key, t)));
      return values.map((v) => (v ? fromFloat32(v) : null));
    } catch (e) {
      this.logger.warn(
        `embeddings cache read failed, asking the engine: ${e instanceof Error ? e.message : String(e)}`,
      );
      return texts.map(() => null);
    }
  }

  /** Stores vectors of `texts` (same order) for RESPONSE_CACHE_TTL_SECONDS; failures are logged only. */
  async putMany(key: EmbeddingKey, texts: readonly string[], vectors: readonly number[][]): Promise<void> {
    if (!this.enabled || texts.length === 0) return;
    const pipeline = this.redis.pipeline();
    texts.forEach((t, i) =>
      pipeline.set(this.key(key, t), toFloat32(vectors[i]), 'EX', this.config.RESPONSE_CACHE_TTL_SECONDS),
    );
    try {
      await pipeline.exec();
    } catch (e) {
      this.logger.warn(`embeddings cache write failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

/** Little-endian float32 bytes of a vector. */
export function toFloat32(vector: readonly number[]): Buffer {
  const buf = Buffer.alloc(vector.length * 4);
  vector.forEach((v, i) => buf.writeFloatLE(v, i * 4));
  return buf;
}

function fromFloat32(buf: Buffer): number[] {
  const out = new Array<number>(buf.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}
