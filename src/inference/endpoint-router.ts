import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import OpenAI from 'openai';
import { InferenceConfig } from '../config/inference.config';
import { ENGINE_ENDPOINTS, type EngineEndpoints } from './engine-endpoints.provider';
import { EngineUnavailable } from './inference.errors';

/** One engine replica as the router sees it. */
export interface Replica {
  /** Stable id: the replica's base URL. */
  id: string;
  baseURL: string;
  client: OpenAI;
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
  promptTokenIds?: number[];
}

/** rendezvous (highest-random-weight) score of `key` on `replicaId`: a 52-bit integer. */
export function rendezvousScore(key: string, replicaId: string): number {
  return parseInt(createHash('sha256').update(`${key}\u0000${replicaId}`).digest('hex').slice(0, 13), 16);
}

/**
 * Picks the engine replica for each request and tracks in-flight load and health.
 * Policies (`ROUTER_POLICY`): `round-robin`; `least-loaded`; `session` — rendezvous hashing on the
 * conversation so its KV prefix stays on one replica, spilling to the least-loaded replica when the
 * preferred one is over its load limit. Unhealthy replicas are skipped and probed again every
 * ROUTER_HEALTH_INTERVAL_SECONDS.
 */
@Injectable()
export class EndpointRouter implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(EndpointRouter.name);
  readonly replicas: Replica[];
  private cursor = 0;
  private probeTimer?: NodeJS.Timeout;
  /** In-flight requests above the replica mean past which `session` spills to the least-loaded replica. */
  spillThreshold = 8;

  constructor(
    @Inject(ENGINE_ENDPOINTS) endpoints: EngineEndpoints,
    private readonly config: InferenceConfig,
  ) {
    this.replicas = endpoints.baseURLs.map((baseURL) => ({
      id: baseURL,
      baseURL,
      client: new OpenAI({
        baseURL,
        apiKey: config.INFERENCE_API_KEY ?? 'unused',
        timeout: config.INFERENCE_TIMEOUT_MS,
        maxRetries: 0,
      }),
      inFlight: 0,
      healthy: true,
      lastFailureAt: 0,
    }));
  }

  onModuleInit(): void {
    this.probeTimer = setInterval(() => void this.probeUnhealthy(), this.config.ROUTER_HEALTH_INTERVAL_SECONDS * 1000);
    this.probeTimer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.probeTimer);
  }

  /**
   * Chooses a replica for `request`.
   * @throws EngineUnavailable when every replica is marked unhealthy
   */
  pick(request: RoutingRequest = {}): Replica {
    const candidates = this.replicas.filter((r) => r.healthy);
    if (candidates.length === 0) {
      throw new EngineUnavailable(`No healthy engine replica (${this.replicas.length} configured).`);
    }
    switch (this.config.ROUTER_POLICY) {
      case 'round-robin':
        return candidates[this.cursor++ % candidates.length];
      case 'least-loaded':
        return this.leastLoaded(candidates);
      case 'session':
      case 'prefix':
        return this.session(candidates, request.routingKey);
    }
  }

  private session(candidates: Replica[], key: string | undefined): Replica {
    if (!key) return this.leastLoaded(candidates);
    let best = candidates[0];
    let bestScore = -1;
    for (const r of candidates) {
      const s = rendezvousScore(key, r.id);
      if (s > bestScore) [best, bestScore] = [r, s];
    }
    const mean = candidates.reduce((a, r) => a + r.inFlight, 0) / candidates.length;
    if (best.inFlight > mean + this.spillThreshold) return this.leastLoaded(candidates);
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

  /** Records that `replica` could not be reached; it is skipped until a probe succeeds. */
  markUnhealthy(replica: Replica, reason: string): void {
    if (replica.healthy) this.logger.warn(`replica ${replica.id} marked unhealthy: ${reason}`);
    replica.healthy = false;
    replica.lastFailureAt = Date.now();
  }

  /** Probes one replica (`GET /v1/models`) and updates its health. */
  async probe(replica: Replica, timeoutMs = 2000): Promise<boolean> {
    try {
      await replica.client.models.list({ timeout: timeoutMs, maxRetries: 0 });
      if (!replica.healthy) this.logger.log(`replica ${replica.id} is healthy again`);
      replica.healthy = true;
      return true;
    } catch {
      replica.healthy = false;
      replica.lastFailureAt = Date.now();
      return false;
    }
  }

  private async probeUnhealthy(): Promise<void> {
    await Promise.all(this.replicas.filter((r) => !r.healthy).map((r) => this.probe(r)));
  }
}
