import type { VectorDeleteFilter, VectorMatch, VectorRecord } from '../database/vector-store';

/**
 * Injection token of the vector index behind the semantic response cache. Bound in caching.module.ts;
 * today's implementation is PgVectorIndex (pgvector through the shared PgVectorStore).
 */
export const VECTOR_INDEX = Symbol('VECTOR_INDEX');

/** Whether an index can hold vectors here, and why not. */
export type VectorIndexAvailability =
  | { available: true; /** For the boot log, e.g. `pgvector 0.8.0`. */ description: string }
  | { available: false; /** For the boot log and GET /v1/cache/stats. */ reason: string };

/**
 * The vectors of one embedding model and dimension (vectors of different models are never compared).
 * Every search and delete is filtered by tenant; the response cache puts its scope fingerprint in
 * `namespace` and the agent and template version in `attributes`.
 */
export interface VectorSpace {
  /** Inserts or replaces vectors by id. @throws RangeError for a vector of another dimension */
  upsert(records: readonly VectorRecord[]): Promise<void>;
  /**
   * The `k` nearest live vectors of a tenant's namespace by cosine similarity, at least `minSimilarity`
   * (-1..1) similar, most similar first; expired vectors are never returned.
   */
  search(
    tenantId: string,
    namespace: string,
    embedding: readonly number[],
    k: number,
    minSimilarity: number,
  ): Promise<VectorMatch[]>;
  /** Deletes matching vectors. @returns how many */
  delete(filter: VectorDeleteFilter): Promise<number>;
  /** Deletes expired vectors. @returns how many */
  purgeExpired(): Promise<number>;
}

/** Where the semantic response cache keeps question vectors, one space per embedding model. */
export interface VectorIndex {
  /** Checked once at boot; when unavailable, semantic lookups are off and exact caching still works. */
  availability(): Promise<VectorIndexAvailability>;
  /** The space for `model` vectors of `dimension`, created if missing. */
  open(model: string, dimension: number): Promise<VectorSpace>;
  /** Deletes matching vectors in every model's space (invalidation). @returns how many */
  deleteEverywhere(filter: VectorDeleteFilter): Promise<number>;
}
