import { randomUUID } from 'node:crypto';
import type {
  EntryFilter,
  FlightLock,
  NewCachedAnswer,
  ResponseCacheStore,
} from '../../src/caching/response-cache.store';
import type { CachedAnswer } from '../../src/caching/response-cache.types';

/**
 * The ResponseCacheStore contract in memory, for unit specs (bind it to RESPONSE_CACHE_STORE): TTL and
 * a per-tenant LRU bound, exact keys and aliases, single-flight locks held until released, counters.
 * `now` is the store's clock (ms); set it to age entries without waiting. `fail` makes every call reject.
 */
export class InMemoryResponseCacheStore implements ResponseCacheStore {
  now = Date.now();
  /** When set, every method rejects with it (a backend outage). */
  fail: Error | null = null;
  private readonly entries = new Map<string, { entry: CachedAnswer; exactKey: string; usedAt: number }>();
  private readonly exact = new Map<string, { entryId: string; expiresAt: number }>();
  private readonly locks = new Set<string>();
  private readonly stats = new Map<string, Map<string, number>>();
  readonly hits = new Map<string, number>();

  constructor(
    private readonly options: { ttlMs: number; maxEntriesPerTenant: number } = {
      ttlMs: 3_600_000,
      maxEntriesPerTenant: 10_000,
    },
  ) {}

  private key(tenantId: string, scope: string, questionHash: string): string {
    return `${tenantId}\u0000${scope}\u0000${questionHash}`;
  }

  private check(): Promise<void> {
    return this.fail ? Promise.reject(this.fail) : Promise.resolve();
  }

  private live(tenantId: string, entryId: string): CachedAnswer | null {
    const held = this.entries.get(entryId);
    if (!held || held.entry.tenantId !== tenantId) return null;
    if (held.entry.createdAt + this.options.ttlMs <= this.now) {
      this.drop(entryId);
      return null;
    }
    return held.entry;
  }

  private drop(entryId: string): void {
    const held = this.entries.get(entryId);
    if (!held) return;
    this.entries.delete(entryId);
    for (const [k, v] of this.exact) if (v.entryId === entryId) this.exact.delete(k);
  }

  async getExact(tenantId: string, scope: string, questionHash: string): Promise<CachedAnswer | null> {
    await this.check();
    const filed = this.exact.get(this.key(tenantId, scope, questionHash));
    if (!filed || filed.expiresAt <= this.now) return null;
    return this.live(tenantId, filed.entryId);
  }

  async get(tenantId: string, entryId: string): Promise<CachedAnswer | null> {
    await this.check();
    return this.live(tenantId, entryId);
  }

  async touch(tenantId: string, entryId: string): Promise<void> {
    await this.check();
    const held = this.entries.get(entryId);
    if (!held || held.entry.tenantId !== tenantId) return;
    held.usedAt = this.now;
    this.hits.set(entryId, (this.hits.get(entryId) ?? 0) + 1);
  }

  async alias(entry: CachedAnswer, questionHash: string): Promise<void> {
    await this.check();
    const k = this.key(entry.tenantId, entry.scope, questionHash);
    const expiresAt = entry.createdAt + this.options.ttlMs;
    if (expiresAt <= this.now || this.exact.has(k)) return;
    this.exact.set(k, { entryId: entry.entryId, expiresAt });
  }

  async put(
    answer: NewCachedAnswer,
    questionHash: string,
  ): Promise<{ entry: CachedAnswer; removed: string[] }> {
    await this.check();
    const removed: string[] = [];
    for (const [id, held] of this.entries) {
      if (held.entry.tenantId === answer.tenantId && held.entry.createdAt + this.options.ttlMs <= this.now) {
        this.drop(id);
        removed.push(id);
      }
    }
    const exactKey = this.key(answer.tenantId, answer.scope, questionHash);
    const previous = this.exact.get(exactKey);
    if (previous && this.entries.get(previous.entryId)?.exactKey === exactKey) {
      this.drop(previous.entryId);
      removed.push(previous.entryId);
    }
    const entry: CachedAnswer = { ...answer, entryId: randomUUID(), createdAt: this.now };
    this.entries.set(entry.entryId, { entry, exactKey, usedAt: this.now });
    this.exact.set(exactKey, { entryId: entry.entryId, expiresAt: this.now + this.options.ttlMs });
    const own = [...this.entries.values()]
      .filter((h) => h.entry.tenantId === answer.tenantId)
      .sort((a, b) => a.usedAt - b.usedAt);
    for (const victim of own.slice(0, Math.max(0, own.length - this.options.maxEntriesPerTenant))) {
      this.drop(victim.entry.entryId);
      removed.push(victim.entry.entryId);
    }
    return { entry, removed };
  }

  async delete(tenantId: string, entryIds: readonly string[]): Promise<number> {
    await this.check();
    let n = 0;
    for (const id of entryIds) {
      if (this.entries.get(id)?.entry.tenantId !== tenantId) continue;
      this.drop(id);
      n++;
    }
    return n;
  }

  async entryIds(tenantId: string, filter: EntryFilter = {}): Promise<string[]> {
    await this.check();
    return [...this.entries.values()]
      .map((h) => h.entry)
      .filter(
        (e) =>
          e.tenantId === tenantId &&
          (!filter.agent || e.agent === filter.agent) &&
          (!filter.templateVersion || e.templateVersion === filter.templateVersion) &&
          (!filter.document || (e.documents ?? []).includes(filter.document)),
      )
      .map((e) => e.entryId);
  }

  async size(tenantId: string): Promise<number> {
    return (await this.entryIds(tenantId)).length;
  }

  async tenants(): Promise<string[]> {
    await this.check();
    return [...new Set([...this.entries.values()].map((h) => h.entry.tenantId))];
  }

  async acquireFlight(tenantId: string, scope: string, questionHash: string): Promise<FlightLock | null> {
    await this.check();
    const k = this.key(tenantId, scope, questionHash);
    if (this.locks.has(k)) return null;
    this.locks.add(k);
    let released = false;
    return {
      release: () => {
        if (!released) this.locks.delete(k);
        released = true;
        return Promise.resolve();
      },
    };
  }

  /** Holds a lock as another API replica would; returns its release. */
  holdFlight(tenantId: string, scope: string, questionHash: string): () => void {
    const k = this.key(tenantId, scope, questionHash);
    this.locks.add(k);
    return () => this.locks.delete(k);
  }

  async flightHeld(tenantId: string, scope: string, questionHash: string): Promise<boolean> {
    await this.check();
    return this.locks.has(this.key(tenantId, scope, questionHash));
  }

  async count(tenantId: string, event: string, by: number): Promise<void> {
    await this.check();
    const counts = this.stats.get(tenantId) ?? new Map<string, number>();
    counts.set(event, (counts.get(event) ?? 0) + by);
    this.stats.set(tenantId, counts);
  }

  async counters(tenantId: string): Promise<Record<string, number>> {
    await this.check();
    const sum: Record<string, number> = {};
    for (const [tenant, counts] of this.stats) {
      if (tenantId !== '*' && tenant !== tenantId) continue;
      for (const [event, n] of counts) sum[event] = (sum[event] ?? 0) + n;
    }
    return sum;
  }
}
