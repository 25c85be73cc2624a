import { Injectable } from '@nestjs/common';
import { PgVectorStore, type VectorDeleteFilter } from '../database/vector-store';
import type { VectorIndex, VectorIndexAvailability, VectorSpace } from './vector-index';

/** Name of the response cache's pgvector collections (tables `vec_response_cache_<model>_<hash>_<dimension>`). */
export const RESPONSE_CACHE_COLLECTION = 'response_cache';

/**
 * The response cache's vectors in PostgreSQL with pgvector (the PgVectorStore knowledge retrieval
 * shares): one table per embedding model and dimension, HNSW with cosine distance, filtered by
 * (tenant, scope). Unavailable on a PostgreSQL server without the extension.
 */
@Injectable()
export class PgVectorIndex implements VectorIndex {
  constructor(private readonly store: PgVectorStore) {}

  async availability(): Promise<VectorIndexAvailability> {
    const support = await this.store.support();
    return support.available
      ? { available: true, description: `pgvector ${support.version ?? '(unknown version)'}` }
      : {
          available: false,
          reason:
            `${support.reason ?? 'pgvector is unavailable'}; use PostgreSQL with pgvector ` +
            '(or the embedded database) for semantic hits',
        };
  }

  open(model: string, dimension: number): Promise<VectorSpace> {
    return this.store.collection({ name: RESPONSE_CACHE_COLLECTION, model, dimension });
  }

  deleteEverywhere(filter: VectorDeleteFilter): Promise<number> {
    return this.store.deleteEverywhere(RESPONSE_CACHE_COLLECTION, filter);
  }
}
