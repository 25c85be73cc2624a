import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { CachingConfig } from '../config/caching.config';
import type { VectorMatch } from '../database/vector-store';
import { EmbeddingsService } from '../inference/embeddings.service';
import { VECTOR_INDEX, type VectorIndex, type VectorSpace } from './vector-index';

/** Why semantic lookups are on or off. */
export interface SemanticStatus {
  enabled: boolean;
  model?: string;
  dimension?: number;
  reason?: string;
}

/** How long to wait before trying again when the embeddings server was unreachable, ms. */
const RETRY_MS = 30_000;
/** How often expired vectors are deleted, ms. */
const PURGE_EVERY_MS = 15 * 60_000;

/**
 * The semantic side of the response cache: embeds questions and finds the nearest cached question
 * of the same scope in the VectorIndex (VECTOR_INDEX; pgvector today). It switches itself off, with one
 * clear log line, when the index is unavailable (for good) or the embeddings server does not answer (retried later);
 * the exact cache works either way.
 */
@Injectable()
export class SemanticIndex implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('ResponseCache');
  private ready?: Promise<VectorSpace | null>;
  private retryAt = 0;
  private purgeTimer?: NodeJS.Timeout;
  private status: SemanticStatus = { enabled: false, reason: 'not initialised yet' };

  constructor(
    private readonly config: CachingConfig,
    @Inject(VECTOR_INDEX) private readonly vectors: VectorIndex,
    private readonly embeddings: EmbeddingsService,
  ) {}

  onApplicationBootstrap(): void {
    // Not awaited: boot does not wait for the embeddings server; lookups wait for this instead.
    void this.collection();
    // Expired vectors are never returned; they are deleted with their entries, and here in case a tenant stops storing.
    this.purgeTimer = setInterval(() => void this.purgeExpired(), PURGE_EVERY_MS);
    this.purgeTimer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.purgeTimer);
  }

  private async purgeExpired(): Promise<void> {
    try {
      const collection = await this.collection();
      const purged = (await collection?.purgeExpired()) ?? 0;
      if (purged > 0) this.logger.log(`purged ${purged} expired vectors`);
    } catch (e) {
      this.logger.warn(`cannot purge expired vectors: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Whether semantic lookups run, and why not. */
  describe(): SemanticStatus {
    return this.status;
  }

  /** The collection of the current embedding model, or null while semantic lookups are off. */
  collection(): Promise<VectorSpace | null> {
    if (
      this.ready === undefined ||
      (this.status.enabled === false && this.retryAt > 0 && Date.now() >= this.retryAt)
    ) {
      this.retryAt = 0;
      this.ready = this.initialise();
    }
    return this.ready;
  }

  private async initialise(): Promise<VectorSpace | null> {
    if (!this.config.RESPONSE_CACHE_ENABLED || !this.config.RESPONSE_CACHE_SEMANTIC) {
      this.status = { enabled: false, reason: 'RESPONSE_CACHE_SEMANTIC=false' };
      return null;
    }
    const availability = await this.vectors.availability();
    if (!availability.available) {
      this.status = { enabled: false, reason: availability.reason };
      this.logger.warn(`semantic response cache is OFF: ${availability.reason}. Exact caching still works.`);
      return null;
    }
    try {
      const { model, dimension } = await this.embeddings.describe();
      const collection = await this.vectors.open(model, dimension);
      this.status = { enabled: true, model, dimension };
      this.logger.log(
        `semantic response cache on: ${model} (${dimension} dimensions), ${availability.description}, ` +
          `similarity threshold ${this.config.RESPONSE_CACHE_SIMILARITY_THRESHOLD}`,
      );
      return collection;
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      // Said once per reason, not at every retry.
      if (this.status.reason !== reason) {
        this.logger.warn(
          `semantic response cache is OFF for now (retried every ${RETRY_MS / 1000} s): ${reason}`,
        );
      }
      this.status = { enabled: false, reason };
      this.retryAt = Date.now() + RETRY_MS;
      return null;
    }
  }

  /** Embeds a question; null when semantic lookups are off or the embeddings server fails. */
  async embed(question: string): Promise<number[] | null> {
    if (!(await this.collection())) return null;
    try {
      return await this.embeddings.embed(question);
    } catch (e) {
      this.logger.warn(
        `cannot embed a question, semantic lookup skipped: ${e instanceof Error ? e.message : String(e)}`,
      );
      return null;
    }
  }

  /** Nearest cached questions of a scope, at least `threshold` similar, most similar first. */
  async nearest(
    tenantId: string,
    scope: string,
    embedding: readonly number[],
    k: number,
    threshold: number,
  ): Promise<VectorMatch[]> {
    const collection = await this.collection();
    if (!collection) return [];
    return collection.search(tenantId, scope, embedding, k, threshold);
  }

  /** Indexes a stored entry's question. */
  async add(entry: {
    entryId: string;
    tenantId: string;
    scope: string;
    agent: string;
    templateVersion: string;
    embedding: readonly number[];
    expiresAt: Date;
  }): Promise<void> {
    const collection = await this.collection();
    if (!collection) return;
    await collection.upsert([
      {
        id: entry.entryId,
        tenantId: entry.tenantId,
        namespace: entry.scope,
        attributes: { agent: entry.agent, templateVersion: entry.templateVersion },
        embedding: entry.embedding,
        expiresAt: entry.expiresAt,
      },
    ]);
  }

  /** Removes vectors of entries by id (evicted, expired, replaced) from the current model's collection. */
  async remove(tenantId: string, entryIds: readonly string[]): Promise<void> {
    if (entryIds.length === 0) return;
    const collection = await this.collection();
    await collection?.delete({ tenantId, ids: entryIds });
  }
}
