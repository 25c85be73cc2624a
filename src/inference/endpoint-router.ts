import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { InferenceConfig } from '../config/inference.config';
import { blockHashChain, type TokenIds } from './block-hash';
import { ENGINE_ADAPTER, type EngineAdapter, type EngineEndpoint } from './engine-adapter';
import { ENGINE_ENDPOINTS, type EngineEndpoints } from './engine-endpoints.provider';
import { EngineUnavailable } from './inference.errors';

/** One engine replica as the router sees it (the EngineAdapter addresses it as an EngineEndpoint). */
export interface Replica extends EngineEndpoint {
  /** Requests currently in flight on this replica. */
  inFlight: number;
  healthy: boolean;
  /** When the replica last failed (ms since epoch), 0 if never. */
  lastFailureAt: number;
}

/** What the router knows about a request when it picks a replica. */
export interface RoutingRequest {
  /** Affinity key (the conversation id); requests without one are spread by load. */
  routingKey?: string;
  /** Prompt token ids, when known (prefix-aware routing). */
  promptTokenIds?: TokenIds;
  /** Their salted block hash chain, when the caller already computed it (else hashed here). */
  promptBlockHashes?: readonly string[];
  /** The tenant's cache salt: the engine mixes it into the first block, so the router does too. */
  cacheSalt?: string;
  /** Replicas already tried for this request (skipped). */
  exclude?: ReadonlySet<string>;
}

/** Why a replica was chosen. */
export type RoutingReason = 'prefix' | 'session' | 'spill' | 'least-loaded' | 'round-robin';

/** The router's choice for one request. */
export interface RoutingDecision {
  replica: Replica;
  policy: InferenceConfig['ROUTER_POLICY'];
  reason: RoutingReason;
  /** `prefix`: prompt tokens the chosen replica is believed to hold (block aligned). */
  matchedTokens?: number;
}

/** rendezvous (highest-random-weight) score of `key` on `replicaId`: a 52-bit integer. */
export function rendezvousScore(key: string, replicaId: string): number {
  return parseInt(createHash('sha256').update(`${key}\u0000${replicaId}`).digest('hex').slice(0, 13), 16);
}

/**
 * Block hashes the router has sent to one replica, least recently used first out. This is the
 * router's belief of what the replica's prefix cache holds (llm-d's "approximate prefix cache"
 * scorer works the same way); it can be wrong after evictions, which costs a recompute, never an error.
 */
class ReplicaPrefixIndex {
  private readonly blocks: LRUCache<string, true>;

  constructor(capacityBlocks: number) {
    this.blocks = new LRUCache({ max: capacityBlocks });
  }

  /** Leading hashes of `chain` that the replica holds (no recency update). */
  matchBlocks(chain: readonly string[]): number {
    let i = 0;
    while (i < chain.length && this.blocks.has(chain[i])) i++;
    return i;
  }

  record(chain: readonly string[]): void {
    for (const h of chain) this.blocks.set(h, true);
  }

  clear(): void {
    this.blocks.clear();
  }
}

/**
 * Picks the engine replica for each request and tracks in-flight load and health.
 *
 * Policies (`ROUTER_POLICY`):
 * - `round-robin`, `least-loaded`;
 * - `session`: rendezvous hashing on the conversation, so its KV prefix stays on one replica; past
 *   ROUTER_SPILL_THRESHOLD requests above the mean it spills to the least-loaded replica;
 * - `prefix`: hashes the prompt's token blocks (chained, salted like the engine's) and prefers the
 *   replica whose remembered chain matches longest: score = matched share of the prompt − weight ×
 *   (in-flight above the least-loaded replica). Matches under ROUTER_PREFIX_MIN_MATCH_TOKENS count as
 *   none; ties and no-match fall back to `session`. The load term is what stops one hot prefix
 *   (a long shared system prompt) from pinning every conversation to one replica. With a single
 *   configured replica the prompt is neither matched nor remembered: it is `session`.
 *
 * Unhealthy replicas are skipped; every ROUTER_HEALTH_INTERVAL_SECONDS each replica is probed, so a
 * dead one is found before a request hits it and a recovered one returns. When every replica is
 * marked unhealthy, those whose failure is older than one interval are tried again.
 */
@Injectable()
export class EndpointRouter implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(EndpointRouter.name);
  readonly replicas: Replica[];
  private readonly prefixIndex = new Map<string, ReplicaPrefixIndex>();
  private cursor = 0;
  private probeTimer?: NodeJS.Timeout;
  /** In-flight requests above the replica mean past which `session` spills to the least-loaded replica. */
  spillThreshold: number;

  constructor(
    @Inject(ENGINE_ENDPOINTS) endpoints: EngineEndpoints,
    private readonly config: InferenceConfig,
    @Inject(ENGINE_ADAPTER) private readonly engine: EngineAdapter,
  ) {
    this.spillThreshold = config.ROUTER_SPILL_THRESHOLD;
    this.replicas = endpoints.baseURLs.map((baseURL) => ({
      id: baseURL,
      baseURL,
      inFlight: 0,
      healthy: true,
      lastFailureAt: 0,
    }));
    for (const r of this.replicas)
      this.prefixIndex.set(r.id, new ReplicaPrefixIndex(config.ROUTER_PREFIX_CAPACITY_BLOCKS));
  }

  onModuleInit(): void {
    this.probeTimer = setInterval(
      () => void this.probeAll(),
      this.config.ROUTER_HEALTH_INTERVAL_SECONDS * 1000,
    );
    this.probeTimer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.probeTimer);
  }

  /**
   * Chooses a replica for `request`.
   * @throws EngineUnavailable when no replica can be tried
   */
  pick(request: RoutingRequest = {}): Replica {
    return this.route(request).replica;
  }

  /**
   * A replica for a request every replica answers alike (`/tokenize`, `/v1/models`): the least-loaded
   * healthy one, `exclude` skipped. Unlike `route` it leaves the policy's state alone (the round-robin
   * cursor, the prefix index), so these side requests do not shift where chats go.
   * @throws EngineUnavailable when no replica can be tried
   */
  pickAny(exclude?: ReadonlySet<string>): Replica {
    return this.leastLoaded(this.candidates(exclude));
  }

  /**
   * Chooses a replica for `request` and says why.
   * @throws EngineUnavailable when no replica can be tried
   */
  route(request: RoutingRequest = {}): RoutingDecision {
    const candidates = this.candidates(request.exclude);
    const policy = this.config.ROUTER_POLICY;
    switch (policy) {
      case 'round-robin':
        return { replica: candidates[this.cursor++ % candidates.length], policy, reason: 'round-robin' };
      case 'least-loaded':
        return { replica: this.leastLoaded(candidates), policy, reason: 'least-loaded' };
      case 'session':
        return { ...this.session(candidates, request.routingKey), policy };
      case 'prefix':
        return { ...this.prefix(candidates, request), policy };
    }
  }

  private candidates(exclude: ReadonlySet<string> | undefined): Replica[] {
    const open = this.replicas.filter((r) => !exclude?.has(r.id));
    const healthy = open.filter((r) => r.healthy);
    if (healthy.length > 0) return healthy;
    // Every remaining replica is marked down: try those whose failure is older than one probe interval.
    const staleAfter = Date.now() - this.config.ROUTER_HEALTH_INTERVAL_SECONDS * 1000;
    const retryable = open.filter((r) => r.lastFailureAt <= staleAfter);
    if (retryable.length > 0) return retryable;
    throw new EngineUnavailable(
      `No healthy engine replica (${this.replicas.length} configured, ${this.replicas.length - open.length} already tried).`,
    );
  }

  private session(
    candidates: Replica[],
    key: string | undefined,
  ): { replica: Replica; reason: RoutingReason } {
    if (!key) return { replica: this.leastLoaded(candidates), reason: 'least-loaded' };
    const preferred = this.rendezvous(candidates, key);
    const mean = candidates.reduce((a, r) => a + r.inFlight, 0) / candidates.length;
    if (preferred.inFlight > mean + this.spillThreshold)
      return { replica: this.leastLoaded(candidates), reason: 'spill' };
    return { replica: preferred, reason: 'session' };
  }

  private prefix(
    candidates: Replica[],
    request: RoutingRequest,
  ): { replica: Replica; reason: RoutingReason; matchedTokens?: number } {
    const tokens = request.promptTokenIds;
    // One configured replica: nothing to choose, so nothing to match or remember (O(prompt) per turn).
    if (!tokens || tokens.length === 0 || this.replicas.length === 1)
      return this.session(candidates, request.routingKey);
    const blockSize = this.config.INFERENCE_BLOCK_SIZE;
    const chain = request.promptBlockHashes ?? blockHashChain(tokens, blockSize, request.cacheSalt);
    const minLoad = Math.min(...candidates.map((r) => r.inFlight));
    const key = request.routingKey ?? '';
    let best: { replica: Replica; score: number; tie: number; matched: number } | null = null;
    let longest = 0;
    for (const replica of candidates) {
      let matched = (this.prefixIndex.get(replica.id)?.matchBlocks(chain) ?? 0) * blockSize;
      if (matched < this.config.ROUTER_PREFIX_MIN_MATCH_TOKENS) matched = 0;
      longest = Math.max(longest, matched);
      const score =
        matched / tokens.length - this.config.ROUTER_PREFIX_LOAD_WEIGHT * (replica.inFlight - minLoad);
      const tie = rendezvousScore(key, replica.id);
      if (!best || score > best.score || (score === best.score && tie > best.tie))
        best = { replica, score, tie, matched };
    }
    let decision: { replica: Replica; reason: RoutingReason; matchedTokens?: number };
    if (!best || longest === 0) {
      decision = this.session(candidates, request.routingKey);
    } else {
      decision = {
        replica: best.replica,
        reason: best.matched === longest ? 'prefix' : 'spill',
        matchedTokens: best.matched,
      };
    }
    this.prefixIndex.get(decision.replica.id)?.record(chain);
    return decision;
  }

  private rendezvous(candidates: Replica[], key: string): Replica {
    let best = candidates[0];
    let bestScore = -1;
    for (const r of candidates) {
      const s = rendezvousScore(key, r.id);
      if (s > bestScore) [best, bestScore] = [r, s];
    }
    return best;
  }

  private leastLoaded(candidates: Replica[]): Replica {
    return candidates.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
  }

  /** Marks a request started on `replica`; call the returned function when it ends. */
  begin(replica: Replica): () => void {
    replica.inFlight++;
    let ended = false;
    return () => {
      if (!ended) replica.inFlight--;
      ended = true;
    };
  }

  /**
   * Records that `replica` could not be reached; it is skipped until a probe succeeds. Its remembered
   * block chains are forgotten: a replica that went away usually comes back with an empty cache.
   */
  markUnhealthy(replica: Replica, reason: string): void {
    if (replica.healthy) this.logger.warn(`replica ${replica.id} marked unhealthy: ${reason}`);
    replica.healthy = false;
    replica.lastFailureAt = Date.now();
    this.prefixIndex.get(replica.id)?.clear();
  }

  /** Probes one replica (the adapter's `health`; vLLM: `GET /v1/models`) and updates its health. */
  async probe(replica: Replica, timeoutMs = 2000): Promise<boolean> {
    try {
      await this.engine.health(replica, timeoutMs);
      if (!replica.healthy) this.logger.log(`replica ${replica.id} is healthy again`);
      replica.healthy = true;
      return true;
    } catch (e) {
      this.markUnhealthy(replica, e instanceof Error ? e.message : String(e));
      return false;
    }
  }

  /** Probes every replica once. */
  async probeAll(): Promise<void> {
    await Promise.all(this.replicas.map((r) => this.probe(r)));
  }
}
