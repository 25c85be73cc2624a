import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
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

/** Deletes the lock only if we still own it. */
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/** Extends the lock only if we still own it. */
const EXTEND_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;

type ScriptedRedis = Redis & {
  rcStore(...keysThenArgs: string[]): Promise<string[]>;
  rcDelete(lru: string, exp: string, ...args: string[]): Promise<number>;
};

/**
 * The response cache's entries in Redis: the answer and its metadata in a hash with a TTL, an exact
 * index (scope fingerprint + hash of the normalised question -> entry id), and per tenant a
 * recency sorted set (LRU) and an expiry sorted set that bound its size; single-flight locks
 * (`SET NX PX`, renewed while held) and counters (a hash per tenant) beside them. Every key starts
 * with REDIS_KEY_PREFIX and carries the tenant as a hash tag.
 */
@Injectable()
export class RedisResponseCacheStore implements ResponseCacheStore {
  /** Single-flight lock lifetime without renewal, ms; renewed every third of it while held. */
  static readonly lockMs = 15_000;

  private readonly redis: ScriptedRedis;
  private readonly prefix: string;

  constructor(
    @Inject(REDIS) redis: Redis,
    redisConfig: RedisConfig,
    private readonly config: CachingConfig,
  ) {
    this.prefix = `${redisConfig.REDIS_KEY_PREFIX}rc:`;
    // defineCommand is idempotent per client; both scripts are sent by EVALSHA with an EVAL fallback.
    redis.defineCommand('rcStore', { lua: STORE_SCRIPT, numberOfKeys: 4 });
    redis.defineCommand('rcDelete', { lua: DELETE_SCRIPT, numberOfKeys: 2 });
    this.redis = redis as ScriptedRedis;
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

  /** The entry filed under the exact key, if any. */
  async getExact(tenantId: string, scope: string, question: string): Promise<CachedAnswer | null> {
    const id = await this.redis.get(this.exactKey(tenantId, scope, question));
    return id ? this.get(tenantId, id) : null;
  }

  /** An entry by id (null once expired or evicted). */
  async get(tenantId: string, entryId: string): Promise<CachedAnswer | null> {
    const h = await this.redis.hgetall(this.entryPrefix(tenantId) + entryId);
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

  /** Marks an entry used now (LRU recency) and counts the hit. */
  async touch(tenantId: string, entryId: string): Promise<void> {
    await this.redis
      .multi()
      .zadd(this.lruKey(tenantId), 'XX', Date.now(), entryId)
      .hincrby(this.entryPrefix(tenantId) + entryId, 'hits', 1)
      .exec();
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

  async count(tenantId: string, event: string, by: number): Promise<void> {
    await this.redis.hincrby(this.statsKey(tenantId), event, by);
  }

  async counters(tenantId: string): Promise<Record<string, number>> {
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
