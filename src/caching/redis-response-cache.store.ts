import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import type Redis from 'ioredis';
import { CachingConfig } from '../config/caching.config';
import { RedisConfig } from '../config/redis.config';
import { REDIS } from '../redis/redis.module';
import type { EntryFilter, FlightLock, NewCachedAnswer, ResponseCacheStore } from './response-cache.store';
import type { CachedAnswer } from './response-cache.types';

/**
 * Stores answers and evicts them atomically: purges expired entries, replaces an older entry filed
 * under the same exact key (not one the key is only an alias of), writes the entry with its TTL, then evicts least recently used entries past the
 * tenant's bound. KEYS: entry, exact, lru, exp. ARGV: id, now ms, ttl ms, max entries, entry key prefix,
 * then field/value pairs. Returns the ids it removed (their vectors are deleted by the caller).
 * All keys of a tenant share a hash tag, so the script also runs on Redis Cluster.
 */
const STORE_SCRIPT = `
local id = ARGV[1]
local now = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local max = tonumber(ARGV[4])
local eprefix = ARGV[5]
local removed = {}
local function drop(victim)
  local ekey = eprefix .. victim
  local xkey = redis.call('HGET', ekey, 'xkey')
  if xkey and redis.call('GET', xkey) == victim then redis.call('DEL', xkey) end
  redis.call('DEL', ekey)
  redis.call('ZREM', KEYS[3], victim)
  redis.call('ZREM', KEYS[4], victim)
  table.insert(removed, victim)
end
for _, old in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)) do drop(old) end
local previous = redis.call('GET', KEYS[2])
if previous and previous ~= id and redis.call('HGET', eprefix .. previous, 'xkey') == KEYS[2] then drop(previous) end
local fields = {}
for i = 6, #ARGV do table.insert(fields, ARGV[i]) end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('SET', KEYS[2], id, 'PX', ttl)
redis.call('ZADD', KEYS[3], now, id)
redis.call('ZADD', KEYS[4], now + ttl, id)
-- A tenant that stops storing leaves no sets behind: its last entry expires before them.
redis.call('PEXPIRE', KEYS[3], ttl)
redis.call('PEXPIRE', KEYS[4], ttl)
local n = redis.call('ZCARD', KEYS[3])
if n > max then
  for _, victim in ipairs(redis.call('ZRANGE', KEYS[3], 0, n - max - 1)) do drop(victim) end
end
return removed
`;

/** Removes entries by id (KEYS: lru, exp; ARGV: entry key prefix, ids...). Returns how many existed. */
const DELETE_SCRIPT = `
local eprefix = ARGV[1]
local n = 0
for i = 2, #ARGV do
  local victim = ARGV[i]
  local ekey = eprefix .. victim
  local xkey = redis.call('HGET', ekey, 'xkey')
  if xkey and redis.call('GET', xkey) == victim then redis.call('DEL', xkey) end
  n = n + redis.call('DEL', ekey)
  redis.call('ZREM', KEYS[1], victim)
  redis.call('ZREM', KEYS[2], victim)
end
return n
`;

/**
 * The entry filed under an exact key, in one round trip: KEYS: exact; ARGV: entry key prefix. Returns
 * `[id, [field, value, ...]]`, or nil when no entry is filed there.
 */
const GET_EXACT_SCRIPT = `
local id = redis.call('GET', KEYS[1])
if not id then return nil end
return {id, redis.call('HGETALL', ARGV[1] .. id)}
`;

/** Deletes the lock only if we still own it. */
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/** Extends the lock only if we still own it. */
const EXTEND_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;

type ScriptedRedis = Redis & {
  rcStore(...keysThenArgs: string[]): Promise<string[]>;
  rcGetExact(exactKey: string, entryPrefix: string): Promise<[string, string[]] | null>;
  rcDelete(lru: string, exp: string, ...args: string[]): Promise<number>;
};

/** Counter increments and hit marks of one write-behind interval. */
interface WriteBehindBatch {
  /** Stats hash key -> counter -> increment. */
  counts: Map<string, Map<string, number>>;
  /** Entry hash key -> its recency set, id, last use (ms) and hits. */
  touches: Map<string, { lru: string; entryId: string; usedAt: number; hits: number }>;
  /** Settles once the batch is written. */
  written: Promise<void>;
  settle: (error?: unknown) => void;
  timer: NodeJS.Timeout;
}

/**
 * The response cache's entries in Redis: the answer and its metadata in a hash with a TTL, an exact
 * index (scope fingerprint + hash of the normalised question -> entry id), and per tenant a
 * recency sorted set (LRU) and an expiry sorted set that bound its size; single-flight locks
 * (`SET NX PX`, renewed while held) and counters (a hash per tenant) beside them. Every key starts
 * with REDIS_KEY_PREFIX and carries the tenant as a hash tag.
 */
@Injectable()
export class RedisResponseCacheStore implements ResponseCacheStore, OnModuleDestroy {
  /** Single-flight lock lifetime without renewal, ms; renewed every third of it while held. */
  static readonly lockMs = 15_000;

  /**
   * How long counter increments and hit marks wait to be written together, ms: at most one pipeline per
   * interval instead of three commands per cache hit (docs/scaling.md, completions). Other replicas see
   * them this much later; this process flushes them before it reads the counters or stores (evicts).
   */
  static readonly writeBehindMs = 100;

  private readonly redis: ScriptedRedis;
  private readonly prefix: string;
  private pending: WriteBehindBatch | null = null;

  constructor(
    @Inject(REDIS) redis: Redis,
    redisConfig: RedisConfig,
    private readonly config: CachingConfig,
  ) {
    this.prefix = `${redisConfig.REDIS_KEY_PREFIX}rc:`;
    // defineCommand is idempotent per client; both scripts are sent by EVALSHA with an EVAL fallback.
    redis.defineCommand('rcStore', { lua: STORE_SCRIPT, numberOfKeys: 4 });
    redis.defineCommand('rcDelete', { lua: DELETE_SCRIPT, numberOfKeys: 2 });
    redis.defineCommand('rcGetExact', { lua: GET_EXACT_SCRIPT, numberOfKeys: 1 });
    this.redis = redis as ScriptedRedis;
  }

  /** The batch being filled, started (with its flush timer) on the first write after a flush. */
  private writeBehind(): WriteBehindBatch {
    if (this.pending) return this.pending;
    let settle!: (error?: unknown) => void;
    const written = new Promise<void>((resolve, reject) => {
      settle = (error) => (error === undefined ? resolve() : reject(error as Error));
    });
    // A caller that does not wait must not leave an unhandled rejection behind.
    written.catch(() => undefined);
    const timer = setTimeout(
      () => void this.flush().catch(() => undefined),
      RedisResponseCacheStore.writeBehindMs,
    );
    timer.unref();
    this.pending = { counts: new Map(), touches: new Map(), written, settle, timer };
    return this.pending;
  }

  /** Writes the pending counter increments and hit marks in one pipeline. @throws the first command's error */
  async flush(): Promise<void> {
    const batch = this.pending;
    if (!batch) return;
    this.pending = null;
    clearTimeout(batch.timer);
    const pipeline = this.redis.pipeline();
    for (const [key, fields] of batch.counts)
      for (const [field, by] of fields) pipeline.hincrby(key, field, by);
    for (const [key, t] of batch.touches)
      pipeline.zadd(t.lru, 'XX', t.usedAt, t.entryId).hincrby(key, 'hits', t.hits);
    try {
      const results = (await pipeline.exec()) ?? [];
      const failed = results.find(([error]) => error);
      batch.settle(failed?.[0] ?? undefined);
    } catch (e) {
      batch.settle(e);
    }
    await batch.written;
  }

  /** Writes what is pending before the Redis client closes (RedisModule closes it at application shutdown). */
  async onModuleDestroy(): Promise<void> {
    await this.flush().catch(() => undefined);
  }

  private tenantKey(tenantId: string): string {
    return `${this.prefix}{${tenantId}}`;
  }
  private entryPrefix(tenantId: string): string {
    return `${this.tenantKey(tenantId)}:e:`;
  }
  /** Key of the exact index for a scope and question hash. */
  exactKey(tenantId: string, scope: string, question: string): string {
    return `${this.tenantKey(tenantId)}:x:${scope}:${question}`;
  }
  /** Key of the single-flight lock for a scope and question hash. */
  flightKey(tenantId: string, scope: string, question: string): string {
    return `${this.tenantKey(tenantId)}:sf:${scope}:${question}`;
  }
  private lruKey(tenantId: string): string {
    return `${this.tenantKey(tenantId)}:lru`;
  }
  private expKey(tenantId: string): string {
    return `${this.tenantKey(tenantId)}:exp`;
  }
  /** Ids of the entries that cited a knowledge document (a set, expiring with its newest entry). */
  private documentKey(tenantId: string, documentId: string): string {
    return `${this.tenantKey(tenantId)}:doc:${documentId}`;
  }
  private statsKey(tenantId: string): string {
    return `${this.tenantKey(tenantId)}:stats`;
  }

  /** The entry filed under the exact key, if any (one round trip: GET_EXACT_SCRIPT). */
  async getExact(tenantId: string, scope: string, question: string): Promise<CachedAnswer | null> {
    const found = await this.redis.rcGetExact(
      this.exactKey(tenantId, scope, question),
      this.entryPrefix(tenantId),
    );
    if (!found) return null;
    const [entryId, flat] = found;
    const h: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]] = flat[i + 1];
    return this.entryOf(tenantId, entryId, h);
  }

  /** An entry by id (null once expired or evicted). */
  async get(tenantId: string, entryId: string): Promise<CachedAnswer | null> {
    return this.entryOf(tenantId, entryId, await this.redis.hgetall(this.entryPrefix(tenantId) + entryId));
  }

  /** An entry from its hash's fields (null when the hash is gone or another tenant's). */
  private entryOf(tenantId: string, entryId: string, h: Record<string, string>): CachedAnswer | null {
    if (h.answer === undefined || h.tenant !== tenantId) return null;
    return {
      entryId,
      tenantId,
      scope: h.scope,
      agent: h.agent,
      model: h.model,
      templateVersion: h.tv,
      question: h.question,
      content: h.answer,
      finishReason: h.finish,
      ...(h.tools ? { toolCalls: JSON.parse(h.tools) as NonNullable<CachedAnswer['toolCalls']> } : {}),
      usage: JSON.parse(h.usage) as CachedAnswer['usage'],
      createdAt: Number(h.created),
      ...(h.docs ? { documents: JSON.parse(h.docs) as string[] } : {}),
    };
  }

  /**
   * Marks an entry used now (LRU recency) and counts the hit: written behind, with the counters (see
   * `writeBehind`); the promise settles once written.
   */
  touch(tenantId: string, entryId: string): Promise<void> {
    const batch = this.writeBehind();
    const key = this.entryPrefix(tenantId) + entryId;
    const touched = batch.touches.get(key);
    if (touched) {
      touched.usedAt = Date.now();
      touched.hits += 1;
    } else batch.touches.set(key, { lru: this.lruKey(tenantId), entryId, usedAt: Date.now(), hits: 1 });
    return batch.written;
  }

  /**
   * Files an entry under another question's exact key too (a question answered by a semantic hit),
   * so that its repeats are exact hits; never replaces an existing key. Expires with the entry.
   */
  async alias(entry: CachedAnswer, questionHash: string): Promise<void> {
    const ttlMs = entry.createdAt + this.config.RESPONSE_CACHE_TTL_SECONDS * 1000 - Date.now();
    if (ttlMs <= 0) return;
    await this.redis.set(
      this.exactKey(entry.tenantId, entry.scope, questionHash),
      entry.entryId,
      'PX',
      ttlMs,
      'NX',
    );
  }

  /**
   * Stores an answer under its exact key with the configured TTL, evicting past the tenant's bound.
   * @returns the stored entry and the ids of entries removed (expired, replaced or evicted)
   */
  async put(
    answer: NewCachedAnswer,
    questionHash: string,
  ): Promise<{ entry: CachedAnswer; removed: string[] }> {
    // Eviction reads the recency set: the hits written behind go first.
    await this.flush().catch(() => undefined);
    const entry: CachedAnswer = { ...answer, entryId: randomUUID(), createdAt: Date.now() };
    const t = entry.tenantId;
    const xkey = this.exactKey(t, entry.scope, questionHash);
    const fields: Record<string, string> = {
      tenant: t,
      scope: entry.scope,
      agent: entry.agent,
      model: entry.model,
      tv: entry.templateVersion,
      question: entry.question,
      answer: entry.content,
      finish: entry.finishReason,
      usage: JSON.stringify(entry.usage),
      ...(entry.toolCalls?.length ? { tools: JSON.stringify(entry.toolCalls) } : {}),
      created: String(entry.createdAt),
      xkey,
      hits: '0',
      ...(entry.documents?.length ? { docs: JSON.stringify(entry.documents) } : {}),
    };
    // The citation index first: an entry is never stored without it (an id left there by a failed
    // store below names nothing, and delete ignores it).
    if (entry.documents?.length) {
      const ttlMs = this.config.RESPONSE_CACHE_TTL_SECONDS * 1000;
      const index = this.redis.multi();
      for (const documentId of entry.documents) {
        index
          .sadd(this.documentKey(t, documentId), entry.entryId)
          .pexpire(this.documentKey(t, documentId), ttlMs);
      }
      await index.exec();
    }
    const removed = await this.redis.rcStore(
      this.entryPrefix(t) + entry.entryId,
      xkey,
      this.lruKey(t),
      this.expKey(t),
      entry.entryId,
      String(entry.createdAt),
      String(this.config.RESPONSE_CACHE_TTL_SECONDS * 1000),
      String(this.config.RESPONSE_CACHE_MAX_ENTRIES_PER_TENANT),
      this.entryPrefix(t),
      ...Object.entries(fields).flat(),
    );
    return { entry, removed };
  }

  /** Deletes entries of a tenant by id. @returns how many existed */
  async delete(tenantId: string, entryIds: readonly string[]): Promise<number> {
    let deleted = 0;
    for (let i = 0; i < entryIds.length; i += 500) {
      deleted += await this.redis.rcDelete(
        this.lruKey(tenantId),
        this.expKey(tenantId),
        this.entryPrefix(tenantId),
        ...entryIds.slice(i, i + 500),
      );
    }
    return deleted;
  }

  /** Ids of a tenant's live entries, optionally only those of an agent, a template version, a cited document. */
  async entryIds(tenantId: string, filter: EntryFilter = {}): Promise<string[]> {
    const ids = filter.document
      ? await this.redis.smembers(this.documentKey(tenantId, filter.document))
      : await this.redis.zrange(this.lruKey(tenantId), 0, -1);
    if (!filter.agent && !filter.templateVersion) return ids;
    const out: string[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const pipeline = this.redis.pipeline();
      for (const id of chunk) pipeline.hmget(this.entryPrefix(tenantId) + id, 'agent', 'tv');
      const results = (await pipeline.exec()) ?? [];
      results.forEach(([, value], j) => {
        const [agent, tv] = (value as (string | null)[] | null) ?? [];
        if (filter.agent && agent !== filter.agent) return;
        if (filter.templateVersion && tv !== filter.templateVersion) return;
        out.push(chunk[j]);
      });
    }
    return out;
  }

  /** Number of entries a tenant holds (expired ones not yet purged included). */
  size(tenantId: string): Promise<number> {
    return this.redis.zcard(this.lruKey(tenantId));
  }

  /** Tenants that have entries, found by scanning for their recency sets. */
  async tenants(): Promise<string[]> {
    const found = new Set<string>();
    const pattern = `${this.prefix}{*}:lru`;
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        const m = /\{([^}]+)\}:lru$/.exec(key);
        if (m) found.add(m[1]);
      }
    } while (cursor !== '0');
    return [...found];
  }

  async acquireFlight(tenantId: string, scope: string, questionHash: string): Promise<FlightLock | null> {
    const key = this.flightKey(tenantId, scope, questionHash);
    const token = randomUUID();
    const lockMs = RedisResponseCacheStore.lockMs;
    const ok = await this.redis.set(key, token, 'PX', lockMs, 'NX');
    if (ok !== 'OK') return null;
    // Renewed while the leader works, so a long generation does not let a second leader in.
    const timer = setInterval(() => {
      this.redis.eval(EXTEND_SCRIPT, 1, key, token, String(lockMs)).catch(() => undefined);
    }, lockMs / 3);
    timer.unref();
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(timer);
        await this.redis.eval(RELEASE_SCRIPT, 1, key, token).catch(() => undefined);
      },
    };
  }

  async flightHeld(tenantId: string, scope: string, questionHash: string): Promise<boolean> {
    return (await this.redis.exists(this.flightKey(tenantId, scope, questionHash))) > 0;
  }

  /** Adds to a counter: written behind (see `writeBehind`); the promise settles once written. */
  count(tenantId: string, event: string, by: number): Promise<void> {
    const batch = this.writeBehind();
    const key = this.statsKey(tenantId);
    let fields = batch.counts.get(key);
    if (!fields) batch.counts.set(key, (fields = new Map<string, number>()));
    fields.set(event, (fields.get(event) ?? 0) + by);
    return batch.written;
  }

  async counters(tenantId: string): Promise<Record<string, number>> {
    // This process's increments not yet written count too.
    await this.flush().catch(() => undefined);
    const sum: Record<string, number> = {};
    const add = (raw: Record<string, string>): void => {
      for (const [field, value] of Object.entries(raw)) sum[field] = (sum[field] ?? 0) + Number(value);
    };
    if (tenantId !== '*') {
      add(await this.redis.hgetall(this.statsKey(tenantId)));
      return sum;
    }
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}{*}:stats`, 'COUNT', 500);
      cursor = next;
      for (const key of keys) add(await this.redis.hgetall(key));
    } while (cursor !== '0');
    return sum;
  }
}
