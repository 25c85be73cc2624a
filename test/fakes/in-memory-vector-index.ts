import { cosineSimilarity } from '../../src/common/lexical-embedding';
import type { VectorDeleteFilter, VectorMatch, VectorRecord } from '../../src/database/vector-store';
import type { VectorIndex, VectorIndexAvailability, VectorSpace } from '../../src/caching/vector-index';

const matches = (r: VectorRecord, filter: VectorDeleteFilter): boolean =>
  (!filter.tenantId || r.tenantId === filter.tenantId) &&
  (!filter.ids || filter.ids.includes(r.id)) &&
  (!filter.namespace || r.namespace === filter.namespace) &&
  (!filter.attributes || Object.entries(filter.attributes).every(([k, v]) => r.attributes[k] === v));

/** One model's vectors in memory, searched exhaustively. */
export class InMemoryVectorSpace implements VectorSpace {
  readonly records = new Map<string, VectorRecord>();

  constructor(
    readonly dimension: number,
    private readonly now: () => number,
  ) {}

  upsert(records: readonly VectorRecord[]): Promise<void> {
    for (const r of records) {
      if (r.embedding.length !== this.dimension) {
        return Promise.reject(
          new RangeError(`vector of ${r.embedding.length} dimensions in a ${this.dimension}-dimension space`),
        );
      }
    }
    for (const r of records) this.records.set(r.id, r);
    return Promise.resolve();
  }

  search(
    tenantId: string,
    namespace: string,
    embedding: readonly number[],
    k: number,
    minSimilarity: number,
  ): Promise<VectorMatch[]> {
    const found = [...this.records.values()]
      .filter(
        (r) =>
          r.tenantId === tenantId &&
          r.namespace === namespace &&
          (!r.expiresAt || r.expiresAt.getTime() > this.now()),
      )
      .map((r) => ({
        id: r.id,
        similarity: cosineSimilarity(r.embedding, embedding),
        attributes: r.attributes,
      }))
      .filter((m) => m.similarity >= minSimilarity)
      .sort((a, b) => b.similarity - a.similarity)
      .slice(0, k);
    return Promise.resolve(found);
  }

  delete(filter: VectorDeleteFilter): Promise<number> {
    let n = 0;
    for (const r of [...this.records.values()]) {
      if (matches(r, filter)) {
        this.records.delete(r.id);
        n++;
      }
    }
    return Promise.resolve(n);
  }

  purgeExpired(): Promise<number> {
    let n = 0;
    for (const r of [...this.records.values()]) {
      if (r.expiresAt && r.expiresAt.getTime() <= this.now()) {
        this.records.delete(r.id);
        n++;
      }
    }
    return Promise.resolve(n);
  }
}

/**
 * The VectorIndex contract in memory, for unit specs (bind it to VECTOR_INDEX): one exhaustive
 * cosine-similarity space per model. `unavailable` makes it report itself off with that reason.
 */
export class InMemoryVectorIndex implements VectorIndex {
  readonly spaces = new Map<string, InMemoryVectorSpace>();
  unavailable: string | null = null;
  now: () => number = () => Date.now();

  availability(): Promise<VectorIndexAvailability> {
    return Promise.resolve(
      this.unavailable === null
        ? { available: true, description: 'in-memory vectors' }
        : { available: false, reason: this.unavailable },
    );
  }

  open(model: string, dimension: number): Promise<VectorSpace> {
    const key = `${model}/${dimension}`;
    let space = this.spaces.get(key);
    if (!space) {
      space = new InMemoryVectorSpace(dimension, () => this.now());
      this.spaces.set(key, space);
    }
    return Promise.resolve(space);
  }

  async deleteEverywhere(filter: VectorDeleteFilter): Promise<number> {
    let n = 0;
    for (const space of this.spaces.values()) n += await space.delete(filter);
    return n;
  }

  /** Vectors held across every space. */
  get size(): number {
    let n = 0;
    for (const space of this.spaces.values()) n += space.records.size;
    return n;
  }
}
