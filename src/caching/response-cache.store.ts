import type { CachedAnswer } from './response-cache.types';

/**
 * Injection token of the exact store of the response cache (entries, exact keys, single-flight locks,
 * counters). Bound in caching.module.ts; today's implementation is RedisResponseCacheStore.
 */
export const RESPONSE_CACHE_STORE = Symbol('RESPONSE_CACHE_STORE');

/** A new entry, before it has an id. */
export type NewCachedAnswer = Omit<CachedAnswer, 'entryId' | 'createdAt'>;

/** Which entries `entryIds` lists; fields combine. */
export interface EntryFilter {
  agent?: string;
  templateVersion?: string;
  /** Only entries that cited this knowledge document. */
  document?: string;
}

/** A held single-flight lock. */
export interface FlightLock {
  /** Releases the lock (idempotent, never throws). */
  release(): Promise<void>;
}

/**
 * Where the response cache keeps its answers, per tenant. `scope` is a scope fingerprint and
 * `questionHash` the hash of the normalised question (scope.ts); the pair is the exact key. A store
 * enforces RESPONSE_CACHE_TTL_SECONDS and RESPONSE_CACHE_MAX_ENTRIES_PER_TENANT itself (expired entries
 * are never returned; past the bound the least recently used go first), and must be shared by every
 * API replica: the single-flight lock and the counters live here for that reason.
 * Errors: any method may reject when the backend fails; ResponseCache logs it and answers without the cache.
 */
export interface ResponseCacheStore {
  /** The live entry filed under the exact key, or null. */
  getExact(tenantId: string, scope: string, questionHash: string): Promise<CachedAnswer | null>;
  /** A live entry by id, or null (expired, evicted, another tenant's). */
  get(tenantId: string, entryId: string): Promise<CachedAnswer | null>;
  /**
   * Marks an entry used now (recency for eviction) and counts the hit. A store may write it behind, with
   * the counters, as long as its own `put` and `counters` see it.
   */
  touch(tenantId: string, entryId: string): Promise<void>;
  /**
   * Files an entry under another question's exact key too (a question answered by a semantic hit), so
   * its repeats are exact hits; never replaces an existing key; expires with the entry.
   */
  alias(entry: CachedAnswer, questionHash: string): Promise<void>;
  /**
   * Stores an answer under its exact key (replacing the entry filed there), evicting past the bound.
   * @returns the stored entry and the ids of entries removed (expired, replaced or evicted), whose
   *   vectors the caller deletes
   */
  put(answer: NewCachedAnswer, questionHash: string): Promise<{ entry: CachedAnswer; removed: string[] }>;
  /** Deletes entries by id. @returns how many existed */
  delete(tenantId: string, entryIds: readonly string[]): Promise<number>;
  /**
   * Ids of a tenant's live entries, optionally only those of an agent and/or template version, or
   * only those that cited a knowledge document (`CachedAnswer.documents`; may include ids of entries
   * gone since, which `delete` ignores).
   */
  entryIds(tenantId: string, filter?: EntryFilter): Promise<string[]>;
  /** Number of entries a tenant holds. */
  size(tenantId: string): Promise<number>;
  /** Tenants that hold entries. */
  tenants(): Promise<string[]>;
  /**
   * Takes the cross-replica single-flight lock of an exact key; null when another caller holds it. The
   * store keeps a held lock alive until `release` (and frees it if the holder dies).
   */
  acquireFlight(tenantId: string, scope: string, questionHash: string): Promise<FlightLock | null>;
  /** Whether someone holds the single-flight lock of an exact key. */
  flightHeld(tenantId: string, scope: string, questionHash: string): Promise<boolean>;
  /**
   * Adds `by` to a tenant's counter `event` (response-cache.stats.ts names the events); may be written
   * behind (RedisResponseCacheStore batches them), settling once written.
   */
  count(tenantId: string, event: string, by: number): Promise<void>;
  /** A tenant's counters, or every tenant's summed when `tenantId` is `*`. */
  counters(tenantId: string): Promise<Record<string, number>>;
}
