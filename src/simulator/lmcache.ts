import { createHash } from 'node:crypto';

import Redis from 'ioredis';
import { LRUCache } from 'lru-cache';

/**
 * LMCache's tiers below vLLM's GPU prefix cache, simulated: a local CPU tier (capacity-bounded LRU)
 * and an optional remote tier in Redis shared between replicas. No KV is held, only which chunks
 * exist; the remote value is just the chunk's token count.
 *
 * As in LMCache: KV is addressed in chunks of `chunkSize` tokens with a hash chain over chunks (a
 * chunk's key depends on every token before it); a lookup walks the chunks of a prompt in order,
 * asking each tier in turn (CPU, then remote), and stops at the first chunk no tier holds; the
 * prompt's chunks are stored after prefill. Simplification: only full chunks are stored (LMCache can
 * also keep the trailing partial chunk).
 */

/** Where a chunk was found. */
export type LmcacheTier = 'cpu' | 'remote';

/** The contiguous run of a prompt's chunks that the tiers hold, from token 0. */
export interface LmcacheLookup {
  /** End of the run, in tokens (a multiple of the chunk size). */
  hitTokens: number;
  /** Whether the remote tier was asked (some chunk was not in the CPU tier). */
  remoteQueried: boolean;
  /** One entry per chunk of the run: its tier and token range [start, end). */
  chunks: { tier: LmcacheTier; start: number; end: number; hash: string }[];
}

/** Tokens to load from each tier to bring a prompt from `fromToken` to `toToken` computed. */
export interface LmcacheLoadPlan {
  cpuTokens: number;
  remoteTokens: number;
}

/** A store of chunk presence shared between replicas. */
export interface RemoteChunkStore {
  /** Presence of each chunk, in order. Errors count as misses. */
  has(hashes: readonly string[]): Promise<boolean[]>;
  /** Records chunks that are not there yet; returns how many were new. */
  put(chunks: readonly { hash: string; tokens: number }[]): Promise<number>;
  /** Deletes every chunk under this store's prefix; returns how many keys were deleted. */
  clear(): Promise<number>;
  close(): Promise<void>;
}

/** Counters of the tiers since start, for `/sim/state`. */
export interface LmcacheStats {
  cpuChunks: number;
  cpuTokens: number;
  cpuCapacityTokens: number;
  cpuEvictions: number;
  remoteEnabled: boolean;
  remoteReads: number;
  remoteWrites: number;
  remoteErrors: number;
}

/**
 * Hashes of the FULL chunks of `tokens`, chained, `cacheSalt` mixed into the first. The chunk size
 * and a namespace are hashed too, so chunk keys never collide with GPU block hashes or with another
 * chunk size.
 */
export function computeChunkHashes(
  tokens: readonly number[],
  chunkSize: number,
  cacheSalt?: string,
): string[] {
  const hashes: string[] = [];
  let parent = `lmcache:${chunkSize}`;
  const fullChunks = Math.floor(tokens.length / chunkSize);
  const all = Int32Array.from(tokens.slice(0, fullChunks * chunkSize));
  for (let c = 0; c < fullChunks; c++) {
    const h = createHash('sha256');
    h.update(parent);
    h.update('|');
    h.update(new Uint8Array(all.buffer, c * chunkSize * 4, chunkSize * 4));
    h.update('|');
    h.update(JSON.stringify(c === 0 && cacheSalt !== undefined ? [cacheSalt] : []));
    parent = h.digest('hex');
    hashes.push(parent);
  }
  return hashes;
}

/** Splits the tokens in [fromToken, toToken) that the lookup covers by the tier they load from. */
export function planLoad(lookup: LmcacheLookup, fromToken: number, toToken: number): LmcacheLoadPlan {
  const plan: LmcacheLoadPlan = { cpuTokens: 0, remoteTokens: 0 };
  for (const c of lookup.chunks) {
    const n = Math.max(0, Math.min(c.end, toToken) - Math.max(c.start, fromToken));
    if (c.tier === 'cpu') plan.cpuTokens += n;
    else plan.remoteTokens += n;
  }
  return plan;
}

/** The local CPU tier and the optional remote tier of one replica. */
export class LmcacheTiers {
  /** Chunk hash -> tokens in the chunk; sized in tokens. */
  private readonly cpu: LRUCache<string, number> | null;
  private cpuEvictions = 0;
  private remoteReads = 0;
  private remoteWrites = 0;

  constructor(
    readonly chunkSize: number,
    readonly cpuCapacityTokens: number,
    private readonly remote: RemoteChunkStore | null,
  ) {
    this.cpu =
      cpuCapacityTokens >= chunkSize
        ? new LRUCache<string, number>({
            maxSize: cpuCapacityTokens,
            sizeCalculation: (tokens) => tokens,
            dispose: (_value, _key, reason) => {
              if (reason === 'evict') this.cpuEvictions++;
            },
          })
        : null;
  }

  /**
   * The contiguous run of `tokens`' chunks held by the tiers: each chunk is looked for in the CPU
   * tier (a hit refreshes its recency) and else in the remote tier (one round trip for all).
   */
  async lookup(tokens: readonly number[], cacheSalt?: string): Promise<LmcacheLookup> {
    const hashes = computeChunkHashes(tokens, this.chunkSize, cacheSalt);
    const inCpu = hashes.map((h) => this.cpu?.has(h) ?? false);
    let inRemote: boolean[] = hashes.map(() => false);
    const missing = hashes.filter((_, i) => !inCpu[i]);
    const remoteQueried = this.remote !== null && missing.length > 0;
    if (this.remote && missing.length > 0) {
      const found = await this.remote.has(missing);
      this.remoteReads++;
      let j = 0;
      inRemote = inCpu.map((cpuHit) => (cpuHit ? false : found[j++]));
    }
    const chunks: LmcacheLookup['chunks'] = [];
    for (let i = 0; i < hashes.length; i++) {
      const tier: LmcacheTier | null = inCpu[i] ? 'cpu' : inRemote[i] ? 'remote' : null;
      if (!tier) break;
      if (tier === 'cpu') this.cpu?.get(hashes[i]); // a hit refreshes the chunk's recency
      chunks.push({ tier, start: i * this.chunkSize, end: (i + 1) * this.chunkSize, hash: hashes[i] });
    }
    return { hitTokens: chunks.length * this.chunkSize, remoteQueried, chunks };
  }

  /**
   * Brings the remote chunks that were loaded (those overlapping [fromToken, toToken)) into the
   * CPU tier, as LMCache keeps what it retrieved locally.
   */
  promote(lookup: LmcacheLookup, fromToken: number, toToken: number): void {
    for (const c of lookup.chunks) {
      if (c.tier === 'remote' && c.start < toToken && c.end > fromToken)
        this.cpu?.set(c.hash, this.chunkSize);
    }
  }

  /**
   * Stores the full chunks of a prompt after its prefill: chunks not yet in the CPU tier are added
   * (possibly evicting the least recently used), and recorded in the remote tier. Returns the
   * tokens newly stored in the CPU tier and the chunks newly written remotely.
   */
  async store(
    tokens: readonly number[],
    cacheSalt?: string,
  ): Promise<{ storedTokens: number; remoteChunks: number; remoteWritten: boolean }> {
    const hashes = computeChunkHashes(tokens, this.chunkSize, cacheSalt);
    let storedTokens = 0;
    for (const h of hashes) {
      if (this.cpu && !this.cpu.has(h)) {
        this.cpu.set(h, this.chunkSize);
        storedTokens += this.chunkSize;
      }
    }
    let remoteChunks = 0;
    const remoteWritten = this.remote !== null && hashes.length > 0;
    if (this.remote && hashes.length > 0) {
      remoteChunks = await this.remote.put(hashes.map((hash) => ({ hash, tokens: this.chunkSize })));
      this.remoteWrites++;
    }
    return { storedTokens, remoteChunks, remoteWritten };
  }

  /** Empties the CPU tier and, when configured, deletes this store's remote chunks. */
  async clear(): Promise<void> {
    this.cpu?.clear();
    if (this.remote) await this.remote.clear();
  }

  stats(remoteErrors = 0): LmcacheStats {
    return {
      cpuChunks: this.cpu?.size ?? 0,
      cpuTokens: this.cpu?.calculatedSize ?? 0,
      cpuCapacityTokens: this.cpu ? this.cpuCapacityTokens : 0,
      cpuEvictions: this.cpuEvictions,
      remoteEnabled: this.remote !== null,
      remoteReads: this.remoteReads,
      remoteWrites: this.remoteWrites,
      remoteErrors,
    };
  }

  async close(): Promise<void> {
    await this.remote?.close();
  }
}

/**
 * Remote tier in Redis: one key per chunk, `{prefix}{model}@{chunk hash}`, value = token count,
 * with a TTL. The model is part of the key as in LMCache, so two models never share chunks.
 */
export class RedisRemoteChunkStore implements RemoteChunkStore {
  errors = 0;

  private constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlSeconds: number,
  ) {}

  /** Connects, failing fast (with the URL in the message) when Redis is unreachable. */
  static async connect(
    url: string,
    keyPrefix: string,
    model: string,
    ttlSeconds: number,
  ): Promise<RedisRemoteChunkStore> {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
    redis.on('error', () => {
      // Connection errors surface on commands (counted as misses); avoid unhandled 'error' events.
    });
    try {
      await redis.connect();
    } catch (err) {
      redis.disconnect();
      throw new Error(`LMCache remote tier: cannot connect to ${url}: ${(err as Error).message}`);
    }
    return new RedisRemoteChunkStore(redis, `${keyPrefix}${model}@`, ttlSeconds);
  }

  async has(hashes: readonly string[]): Promise<boolean[]> {
    if (hashes.length === 0) return [];
    try {
      const values = await this.redis.mget(hashes.map((h) => this.prefix + h));
      return values.map((v) => v !== null);
    } catch {
      this.errors++;
      return hashes.map(() => false);
    }
  }

  async put(chunks: readonly { hash: string; tokens: number }[]): Promise<number> {
    if (chunks.length === 0) return 0;
    try {
      const pipeline = this.redis.pipeline();
      for (const c of chunks)
        pipeline.set(this.prefix + c.hash, String(c.tokens), 'EX', this.ttlSeconds, 'NX');
      const results = (await pipeline.exec()) ?? [];
      return results.filter(([err, res]) => err === null && res === 'OK').length;
    } catch {
      this.errors++;
      return 0;
    }
  }

  async clear(): Promise<number> {
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(
        cursor,
        'MATCH',
        `${escapeGlob(this.prefix)}*`,
        'COUNT',
        500,
      );
      cursor = next;
      if (keys.length > 0) deleted += await this.redis.unlink(...keys);
    } while (cursor !== '0');
    return deleted;
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}
