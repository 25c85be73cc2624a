import { createHash, randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type Redis from 'ioredis';
import { IdempotencyConfig } from '../config/idempotency.config';
import { RedisConfig } from '../config/redis.config';
import { REDIS } from '../redis/redis.module';
import { IdempotencyKeyInUse, IdempotencyKeyReused } from './idempotency.errors';

/** A completed request's response, as replayed: HTTP status and JSON body. */
export interface StoredResponse {
  status: number;
  body: unknown;
}

/** What a key holds in Redis: a request still running, or its stored response. */
type Entry =
  | { state: 'running'; fingerprint: string; owner: string }
  | { state: 'done'; fingerprint: string; response: StoredResponse };

/** The outcome of claiming a key: run the request (and later complete or release the claim), or replay. */
export type Claim =
  | { kind: 'run'; redisKey: string; owner: string; fingerprint: string }
  | { kind: 'replay'; response: StoredResponse };

/** Deletes a running entry only if this request still owns it (a late release never frees another's claim). */
const RELEASE = `local v = redis.call('GET', KEYS[1])
if v and string.find(v, ARGV[1], 1, true) then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * `Idempotency-Key` semantics after the IETF httpapi draft (draft-ietf-httpapi-idempotency-key-header):
 * per tenant, a key names one request (method, path and body, by SHA-256 fingerprint). The first request
 * runs; a repeat while it runs is 409 with `Retry-After`; a repeat after it completed gets the stored
 * response; the same key with another request is 422. A request that fails releases its key, so the
 * client can retry it. Entries live in Redis: running for IDEMPOTENCY_RUNNING_TTL_SECONDS at most,
 * completed for IDEMPOTENCY_TTL_SECONDS.
 */
@Injectable()
export class IdempotencyService {
  private readonly logger = new Logger(IdempotencyService.name);

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    private readonly redisConfig: RedisConfig,
    private readonly config: IdempotencyConfig,
  ) {}

  /** SHA-256 of what makes two requests the same request: method, path (with query) and JSON body. */
  static fingerprint(method: string, url: string, body: unknown): string {
    return createHash('sha256')
      .update(`${method} ${url}\n${JSON.stringify(body ?? null)}`)
      .digest('base64url');
  }

  /**
   * Claims `key` for a request of `tenantId`, or finds the response it already has.
   * @throws IdempotencyKeyInUse (409) while the first request with this key runs
   * @throws IdempotencyKeyReused (422) when the key was used for a different request
   * @throws DependencyUnavailable (503, via the problem filter) when Redis does not answer
   */
  async claim(tenantId: string, key: string, fingerprint: string): Promise<Claim> {
    const redisKey = `${this.redisConfig.REDIS_KEY_PREFIX}idempotency:${tenantId}:${createHash('sha256').update(key).digest('base64url')}`;
    const owner = randomUUID();
    const running: Entry = { state: 'running', fingerprint, owner };
    const set = await this.redis.set(
      redisKey,
      JSON.stringify(running),
      'EX',
      this.config.IDEMPOTENCY_RUNNING_TTL_SECONDS,
      'NX',
    );
    if (set === 'OK') return { kind: 'run', redisKey, owner, fingerprint };
    const raw = await this.redis.get(redisKey);
    // Released or expired between the two commands: claim again.
    if (raw === null) return this.claim(tenantId, key, fingerprint);
    const entry = JSON.parse(raw) as Entry;
    if (entry.fingerprint !== fingerprint) throw new IdempotencyKeyReused();
    if (entry.state === 'running') throw new IdempotencyKeyInUse();
    return { kind: 'replay', response: entry.response };
  }

  /** Stores the response of a claimed request for replay. Never throws: a failure is logged, the response still goes out. */
  async complete(claim: Extract<Claim, { kind: 'run' }>, response: StoredResponse): Promise<void> {
    const entry: Entry = { state: 'done', fingerprint: claim.fingerprint, response };
    await this.redis
      .set(claim.redisKey, JSON.stringify(entry), 'EX', this.config.IDEMPOTENCY_TTL_SECONDS)
      .catch((e: unknown) => this.logger.warn(`idempotent response not stored: ${(e as Error).message}`));
  }

  /** Frees the key of a request that failed, so that a retry runs it. Never throws. */
  async release(claim: Extract<Claim, { kind: 'run' }>): Promise<void> {
    await this.redis
      .eval(RELEASE, 1, claim.redisKey, claim.owner)
      .catch((e: unknown) => this.logger.warn(`idempotency key not released: ${(e as Error).message}`));
  }
}
