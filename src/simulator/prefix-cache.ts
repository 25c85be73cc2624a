import { createHash } from 'node:crypto';

/**
 * vLLM automatic prefix caching, simulated faithfully at the level of blocks and hashes.
 *
 * Source: vLLM design doc "Automatic Prefix Caching" (https://docs.vllm.ai/en/latest/design/prefix_caching/)
 * and vLLM v1 `vllm/v1/core/kv_cache_manager.py`, `block_pool.py`:
 * - a block's hash is hash(parent block hash, token ids of the block, extra keys); only FULL blocks
 *   are hashed and cached;
 * - `cache_salt` "is injected into the hash of the first block, ensuring that only requests with
 *   the same salt can reuse cached KV blocks";
 * - the pool is allocated once; blocks held by running requests are pinned by a reference count,
 *   blocks with ref count 0 sit in a free queue whose head is the least recently used; allocating
 *   pops the head and, if that block was cached, evicts its hash;
 * - a finished request's blocks return to the TAIL of the free queue in REVERSE order, "because the
 *   last block of a request must hash more tokens and is less likely to be reused";
 * - `get_computed_blocks` looks up the longest run of cached block hashes with
 *   `max_cache_hit_length = request.num_tokens - 1`: "when all tokens hit the cache, we must
 *   recompute the last token to obtain logits", and since hits are whole blocks a full hit
 *   recomputes the whole last block;
 * - blocks are not de-duplicated: two blocks may carry the same hash (block tables are append-only).
 */

/** Hash of one full block, hex sha256 (vLLM advises sha256 for multi-tenant setups). */
export type BlockHash = string;

/**
 * Hashes of the FULL blocks of `tokens`, chained: block i's hash covers block i's token ids, the
 * hash of block i-1 and, for block 0 only, `cacheSalt`. A trailing partial block has no hash.
 * `parentHash` continues an existing chain (hashing blocks filled during decode).
 */
export function computeBlockHashes(
  tokens: readonly number[],
  blockSize: number,
  cacheSalt?: string,
  parentHash: BlockHash | null = null,
  firstBlockIndex = 0,
): BlockHash[] {
  const hashes: BlockHash[] = [];
  let parent = parentHash;
  const fullBlocks = Math.floor(tokens.length / blockSize);
  const all = Int32Array.from(tokens.slice(0, fullBlocks * blockSize));
  for (let b = 0; b < fullBlocks; b++) {
    const isFirst = firstBlockIndex + b === 0;
    const bytes = new Uint8Array(all.buffer, b * blockSize * 4, blockSize * 4);
    parent = hashBlock(parent, bytes, isFirst ? cacheSalt : undefined);
    hashes.push(parent);
  }
  return hashes;
}

/**
 * hash(parent, token ids, extra keys); the extra key here is the cache salt of block 0. Token ids
 * are hashed as int32 (platform byte order, little-endian on x86 and ARM).
 */
export function hashBlock(
  parent: BlockHash | null,
  blockTokens: readonly number[] | Uint8Array,
  salt?: string,
): BlockHash {
  const h = createHash('sha256');
  h.update(parent ?? 'none');
  h.update('|');
  h.update(
    blockTokens instanceof Uint8Array ? blockTokens : new Uint8Array(Int32Array.from(blockTokens).buffer),
  );
  h.update('|');
  // JSON keeps "no salt" and "empty salt" distinct from any salt string.
  h.update(JSON.stringify(salt === undefined ? [] : [salt]));
  return h.digest('hex');
}

interface KvBlock {
  readonly id: number;
  hash: BlockHash | null;
  refCount: number;
}

interface RequestBlocks {
  readonly blocks: KvBlock[];
  /** Token ids whose KV the request holds or will compute (prompt, then decoded tokens). */
  readonly tokens: number[];
  /** Chain of hashes of the request's full blocks (prompt blocks first, then decoded ones). */
  readonly hashes: BlockHash[];
  readonly cacheSalt?: string;
  /** Tokens whose KV is computed (and thus cacheable). */
  numComputed: number;
  /** Blocks set aside at admission for decode, not yet taken from the pool. */
  reservedLeft: number;
}

/** Result of admitting a request into the pool. */
export interface KvAllocation {
  /** Prompt tokens found in the GPU prefix cache (block aligned, at most prompt - 1). */
  hitTokens: number;
  /** New blocks taken from the free queue for the prompt. */
  newBlocks: number;
  /** Cached blocks evicted from the free queue to make room. */
  evictedBlocks: number;
}

/** Counts of the pool, for `/sim/state` and metrics. */
export interface KvPoolStats {
  totalBlocks: number;
  /** Blocks held by at least one running request. */
  usedBlocks: number;
  /** Blocks in the free queue (evictable), cached or not. */
  freeBlocks: number;
  /** Blocks that carry a hash (reusable), pinned or free. */
  cachedBlocks: number;
  /** Free blocks that carry a hash: what eviction would destroy. */
  cachedFreeBlocks: number;
  /** Blocks promised to running requests for their decode. */
  reservedBlocks: number;
  runningRequests: number;
  /** vLLM's `kv_cache_usage_perc`: 1 - free / total, in [0, 1]. */
  usage: number;
}

/**
 * The GPU KV block pool with vLLM's prefix-cache semantics.
 *
 * Simplification: instead of preempting a running request when decode runs out of blocks (vLLM
 * recomputes it later), admission reserves the blocks a request needs for its whole decode, so a
 * request is admitted only when it can finish.
 */
export class KvBlockPool {
  private readonly blocks: KvBlock[];
  /** Insertion order = LRU order: the first key is evicted first. O(1) removal from the middle. */
  private readonly freeQueue = new Map<number, KvBlock>();
  private readonly cached = new Map<BlockHash, Set<number>>();
  private readonly requests = new Map<string, RequestBlocks>();
  private reserved = 0;

  constructor(
    readonly numBlocks: number,
    readonly blockSize: number,
    readonly enableCaching: boolean,
  ) {
    this.blocks = Array.from({ length: numBlocks }, (_, id) => ({ id, hash: null, refCount: 0 }));
    for (const b of this.blocks) this.freeQueue.set(b.id, b);
  }

  /**
   * Tokens of a prompt that the prefix cache would serve now (no side effect):
   * the longest run of cached block hashes, capped at `numPromptTokens - 1` (vLLM v1).
   */
  peekHitTokens(promptHashes: readonly BlockHash[], numPromptTokens: number): number {
    return this.longestHit(promptHashes, numPromptTokens).length * this.blockSize;
  }

  /**
   * Admits a request: touches its cached prefix blocks (ref count +1, out of the free queue),
   * takes new blocks for the rest of the prompt from the free-queue head (evicting their hashes)
   * and reserves the blocks its decode will need. Returns null, changing nothing, when the free
   * blocks cannot cover that; the caller keeps the request waiting.
   */
  allocate(
    requestId: string,
    promptTokens: readonly number[],
    promptHashes: readonly BlockHash[],
    maxOutputTokens: number,
    cacheSalt?: string,
  ): KvAllocation | null {
    if (this.requests.has(requestId)) throw new Error(`request ${requestId} already holds blocks`);
    const hit = this.longestHit(promptHashes, promptTokens.length);
    const promptBlocks = Math.ceil(promptTokens.length / this.blockSize);
    const newBlocks = promptBlocks - hit.length;
    // Decode computes up to (prompt + output - 1) tokens: the last sampled token is never fed back.
    const totalBlocks = Math.ceil((promptTokens.length + Math.max(0, maxOutputTokens - 1)) / this.blockSize);
    const decodeBlocks = Math.max(0, totalBlocks - promptBlocks);
    const hitBlocksInFreeQueue = hit.filter((b) => b.refCount === 0).length;
    const available = this.freeQueue.size - hitBlocksInFreeQueue - this.reserved;
    if (available < newBlocks + decodeBlocks) return null;

    for (const b of hit) this.touch(b);
    let evictedBlocks = 0;
    const taken: KvBlock[] = [];
    for (let i = 0; i < newBlocks; i++) {
      const { block, evicted } = this.popFree();
      if (evicted) evictedBlocks++;
      taken.push(block);
    }
    this.reserved += decodeBlocks;
    const hitTokens = hit.length * this.blockSize;
    this.requests.set(requestId, {
      blocks: [...hit, ...taken],
      tokens: [...promptTokens],
      hashes: [...promptHashes],
      cacheSalt,
      numComputed: hitTokens,
      reservedLeft: decodeBlocks,
    });
    return { hitTokens, newBlocks, evictedBlocks };
  }

  /**
   * Marks the request's first `numComputed` tokens as computed and caches every block that is
   * now full, so later requests (and this one's next turn) can hit it.
   */
  markComputed(requestId: string, numComputed: number): void {
    const req = this.mustGet(requestId);
    req.numComputed = Math.min(Math.max(req.numComputed, numComputed), req.tokens.length);
    this.cacheFullBlocks(req);
  }

  /**
   * Appends a sampled token. Its KV is computed in the next step, so the tokens before it become
   * computed now; a new block is taken from the request's reservation when the last one is full.
   */
  appendToken(requestId: string, token: number): void {
    const req = this.mustGet(requestId);
    req.tokens.push(token);
    req.numComputed = req.tokens.length - 1;
    const needed = Math.ceil(req.numComputed / this.blockSize);
    while (req.blocks.length < needed) {
      if (req.reservedLeft <= 0) throw new Error(`request ${requestId} exceeded its reserved decode blocks`);
      req.reservedLeft--;
      this.reserved--;
      req.blocks.push(this.popFree().block);
    }
    this.cacheFullBlocks(req);
  }

  /**
   * Releases a finished or aborted request: ref counts drop, blocks reaching 0 go to the free-queue
   * tail in reverse order (its last block is evicted first); unused reservation is returned.
   */
  free(requestId: string): void {
    const req = this.requests.get(requestId);
    if (!req) return;
    this.requests.delete(requestId);
    this.reserved -= req.reservedLeft;
    for (let i = req.blocks.length - 1; i >= 0; i--) {
      const b = req.blocks[i];
      b.refCount--;
      if (b.refCount === 0) this.freeQueue.set(b.id, b);
    }
  }

  /**
   * vLLM's `/reset_prefix_cache`: forgets every block hash. Blocks held by running requests stay
   * allocated but are no longer discoverable.
   */
  reset(): void {
    for (const b of this.blocks) b.hash = null;
    this.cached.clear();
  }

  stats(): KvPoolStats {
    let usedBlocks = 0;
    let cachedBlocks = 0;
    let cachedFreeBlocks = 0;
    for (const b of this.blocks) {
      if (b.refCount > 0) usedBlocks++;
      if (b.hash !== null) {
        cachedBlocks++;
        if (b.refCount === 0) cachedFreeBlocks++;
      }
    }
    return {
      totalBlocks: this.numBlocks,
      usedBlocks,
      freeBlocks: this.freeQueue.size,
      cachedBlocks,
      cachedFreeBlocks,
      reservedBlocks: this.reserved,
      runningRequests: this.requests.size,
      usage: 1 - this.freeQueue.size / this.numBlocks,
    };
  }

  /** Whether a block with this hash is cached (pinned or free). */
  isCached(hash: BlockHash): boolean {
    return (this.cached.get(hash)?.size ?? 0) > 0;
  }

  private longestHit(promptHashes: readonly BlockHash[], numPromptTokens: number): KvBlock[] {
    if (!this.enableCaching) return [];
    const maxBlocks = Math.floor(Math.max(0, numPromptTokens - 1) / this.blockSize);
    const hit: KvBlock[] = [];
    for (let i = 0; i < Math.min(maxBlocks, promptHashes.length); i++) {
      const ids = this.cached.get(promptHashes[i]);
      if (!ids || ids.size === 0) break;
      const first = ids.values().next();
      if (first.done) break;
      hit.push(this.blocks[first.value]);
    }
    return hit;
  }

  private touch(b: KvBlock): void {
    if (b.refCount === 0) this.freeQueue.delete(b.id);
    b.refCount++;
  }

  private popFree(): { block: KvBlock; evicted: boolean } {
    const head = this.freeQueue.values().next();
    if (head.done) throw new Error('KV block pool exhausted (admission should have prevented this)');
    const block = head.value;
    this.freeQueue.delete(block.id);
    const evicted = block.hash !== null;
    if (block.hash !== null) this.uncache(block);
    block.refCount = 1;
    return { block, evicted };
  }

  private cacheFullBlocks(req: RequestBlocks): void {
    const fullBlocks = Math.floor(req.numComputed / this.blockSize);
    if (req.hashes.length < fullBlocks) {
      const start = req.hashes.length;
      const more = computeBlockHashes(
        req.tokens.slice(start * this.blockSize, fullBlocks * this.blockSize),
        this.blockSize,
        req.cacheSalt,
        start === 0 ? null : req.hashes[start - 1],
        start,
      );
      req.hashes.push(...more);
    }
    if (!this.enableCaching) return;
    for (let i = 0; i < fullBlocks; i++) {
      const b = req.blocks[i];
      if (b.hash !== null) continue;
      b.hash = req.hashes[i];
      let ids = this.cached.get(b.hash);
      if (!ids) {
        ids = new Set();
        this.cached.set(b.hash, ids);
      }
      ids.add(b.id);
    }
  }

  private uncache(b: KvBlock): void {
    if (b.hash === null) return;
    const ids = this.cached.get(b.hash);
    ids?.delete(b.id);
    if (ids && ids.size === 0) this.cached.delete(b.hash);
    b.hash = null;
  }

  private mustGet(requestId: string): RequestBlocks {
    const req = this.requests.get(requestId);
    if (!req) throw new Error(`request ${requestId} holds no blocks`);
    return req;
  }
}
