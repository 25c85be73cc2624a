import { EntityManager } from '@mikro-orm/postgresql';
import { Injectable, Logger } from '@nestjs/common';
import { iterativeScanSupported, PgVectorStore, vectorTableName } from '../database/vector-store';
import { EmbeddingsService } from '../inference/embeddings.service';

/** The table holding chunk embeddings of one embedding model and dimension. */
export interface KnowledgeVectorTable {
  table: string;
  model: string;
  dimension: number;
  /** pgvector >= 0.8: filtered HNSW scans continue until k rows pass the filter. */
  iterativeScan: boolean;
}

/** Name of the knowledge collections (tables `vec_knowledge_<model>_<hash>_<dimension>`). */
export const KNOWLEDGE_COLLECTION = 'knowledge';

const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/**
 * Where chunk embeddings live: one table per embedding model and dimension (so vectors of different
 * models are never compared), created when first needed because the dimension is known only then:
 * `chunk_id` (-> knowledge_chunks, on delete cascade, so a removed chunk takes its vector with it),
 * `tenant_id`, `knowledge_base_id`, `embedding vector(d)` with an HNSW index (cosine) and a b-tree on
 * (tenant, knowledge base).
 *
 * On a PostgreSQL server without pgvector there is no such table: `table()` returns null, ingestion
 * embeds nothing and retrieval is full-text only; it says so once in the log.
 */
@Injectable()
export class KnowledgeVectors {
  private readonly logger = new Logger('Knowledge');
  private readonly tables = new Map<string, Promise<KnowledgeVectorTable>>();
  private warned = false;

  constructor(
    private readonly em: EntityManager,
    private readonly vectors: PgVectorStore,
    private readonly embeddings: EmbeddingsService,
  ) {}

  /** Why vectors are unavailable, or null when pgvector is there. */
  async unavailableReason(): Promise<string | null> {
    const support = await this.vectors.support();
    if (support.available) return null;
    const reason = support.reason ?? 'pgvector is unavailable';
    if (!this.warned) {
      this.warned = true;
      this.logger.warn(
        `knowledge retrieval is FULL-TEXT ONLY: ${reason}. Documents are chunked and indexed for full-text ` +
          'search without embeddings; use PostgreSQL with pgvector (or the embedded database) for vector and hybrid search.',
      );
    }
    return reason;
  }

  /**
   * The table of the current embedding model, created if missing; null without pgvector.
   * @throws EmbeddingsUnavailable when the embeddings server cannot be asked for its model
   */
  async table(): Promise<KnowledgeVectorTable | null> {
    if ((await this.unavailableReason()) !== null) return null;
    const { model, dimension } = await this.embeddings.describe();
    const table = vectorTableName({ name: KNOWLEDGE_COLLECTION, model, dimension });
    let ready = this.tables.get(table);
    if (!ready) {
      ready = this.create(table, model, dimension).catch((e: unknown) => {
        this.tables.delete(table);
        throw e;
      });
      this.tables.set(table, ready);
    }
    return ready;
  }

  private async create(table: string, model: string, dimension: number): Promise<KnowledgeVectorTable> {
    const support = await this.vectors.support();
    const t = quoteIdent(table);
    await this.em.fork().transactional(async (em) => {
      // Several workers may create the same table at once; CREATE ... IF NOT EXISTS alone can still collide.
      await em.execute('select pg_advisory_xact_lock(hashtext(?))', [table]);
      await em.execute(
        `create table if not exists ${t} (
           chunk_id uuid primary key references knowledge_chunks (id) on delete cascade,
           tenant_id uuid not null,
           knowledge_base_id uuid not null,
           embedding vector(${dimension}) not null
         )`,
        [],
        'run',
      );
      await em.execute(
        `create index if not exists ${quoteIdent(`${table.slice(0, 55)}_scope`)} on ${t} (tenant_id, knowledge_base_id)`,
        [],
        'run',
      );
      // HNSW indexes vectors up to 2,000 dimensions (pgvector's limit for `vector`); above it, exact scans.
      if (dimension <= 2000) {
        await em.execute(
          `create index if not exists ${quoteIdent(`${table.slice(0, 56)}_hnsw`)} on ${t} using hnsw (embedding vector_cosine_ops)`,
          [],
          'run',
        );
      }
    });
    this.logger.log(
      `knowledge vectors in ${table} (${model}, ${dimension} dimensions, pgvector ${support.version})`,
    );
    return { table, model, dimension, iterativeScan: iterativeScanSupported(support.version) };
  }
}
