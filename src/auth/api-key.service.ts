import { createHash, randomBytes } from 'node:crypto';
import { EntityManager } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { AppConfig } from '../config/app.config';
import { ApiKey } from './api-key.entity';
import { ApiKeyNotFound, Unauthorized } from './auth.errors';
import { Tenant } from './tenant.entity';

/** Who is calling: resolved from the API key on every request. */
export interface AuthContext {
  tenantId: string;
  tenantName: string;
  keyId: string;
  admin: boolean;
}

/** A freshly created key. `key` is shown once and never stored. */
export interface CreatedApiKey {
  key: string;
  keyId: string;
  prefix: string;
  tenantId: string;
  tenantName: string;
  admin: boolean;
}

const KEY_PREFIX = 'kvc_';

/** SHA-256 hex of a key; what the database stores. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * Creates, verifies and revokes API keys. Keys are `kvc_` + 43 base64url characters (256 random bits);
 * only their hash is stored. Verified keys are remembered for API_KEY_CACHE_SECONDS so a request does
 * not cost a database round trip; that is also the longest a revoked key keeps working on a running replica.
 */
@Injectable()
export class ApiKeyService {
  private readonly verified: LRUCache<string, AuthContext>;
  private readonly cacheEnabled: boolean;

  constructor(
    private readonly em: EntityManager,
    config: AppConfig,
  ) {
    this.cacheEnabled = config.API_KEY_CACHE_SECONDS > 0;
    this.verified = new LRUCache({ max: 10_000, ttl: Math.max(1, config.API_KEY_CACHE_SECONDS) * 1000 });
  }

  /**
   * Creates a key for `tenantName`, creating the tenant if it does not exist.
   * @returns the key in clear (shown once) and its identifiers
   */
  async create(tenantName: string, options: { name?: string; admin?: boolean } = {}): Promise<CreatedApiKey> {
    const em = this.em.fork();
    let tenant = await em.findOne(Tenant, { name: tenantName });
    if (!tenant) {
      tenant = em.create(Tenant, { name: tenantName });
    }
    const key = KEY_PREFIX + randomBytes(32).toString('base64url');
    const apiKey = em.create(ApiKey, {
      tenantId: tenant.id,
      keyHash: hashApiKey(key),
      prefix: key.slice(0, 12),
      name: options.name ?? null,
      admin: options.admin ?? false,
    });
    await em.flush();
    return {
      key,
      keyId: apiKey.id,
      prefix: apiKey.prefix,
      tenantId: tenant.id,
      tenantName: tenant.name,
      admin: apiKey.admin,
    };
  }

  /**
   * Revokes a key given in clear, or by id or prefix.
   * @throws ApiKeyNotFound when nothing matches (or a prefix is ambiguous)
   */
  async revoke(keyOrIdOrPrefix: string): Promise<ApiKey> {
    const em = this.em.fork();
    const candidates = await em.find(ApiKey, {
      $or: [
        { keyHash: hashApiKey(keyOrIdOrPrefix) },
        { prefix: keyOrIdOrPrefix },
        ...(/^[0-9a-f-]{36}$/i.test(keyOrIdOrPrefix) ? [{ id: keyOrIdOrPrefix }] : []),
      ],
    });
    if (candidates.length !== 1) {
      throw new ApiKeyNotFound(
        candidates.length === 0
          ? 'No API key matches.'
          : `${candidates.length} keys match that prefix; give the id.`,
      );
    }
    const [apiKey] = candidates;
    apiKey.revokedAt ??= new Date();
    await em.flush();
    this.verified.clear();
    return apiKey;
  }

  /** Lists keys (never their secrets), optionally for one tenant. */
  async list(tenantName?: string): Promise<(ApiKey & { tenantName: string })[]> {
    const em = this.em.fork();
    const tenants = await em.find(Tenant, tenantName ? { name: tenantName } : {});
    const names = new Map(tenants.map((t) => [t.id, t.name]));
    const keys = await em.find(
      ApiKey,
      { tenantId: { $in: [...names.keys()] } },
      { orderBy: { createdAt: 'asc' } },
    );
    return keys.map((k) => Object.assign(k, { tenantName: names.get(k.tenantId) ?? '' }));
  }

  /**
   * Resolves a presented key to its tenant.
   * @throws Unauthorized for an unknown or revoked key
   */
  async verify(key: string): Promise<AuthContext> {
    const hash = hashApiKey(key);
    const cached = this.cacheEnabled ? this.verified.get(hash) : undefined;
    if (cached) return cached;
    const em = this.em.fork();
    const apiKey = await em.findOne(ApiKey, { keyHash: hash });
    if (!apiKey || apiKey.revokedAt) throw new Unauthorized('The API key is unknown or revoked.');
    const tenant = await em.findOneOrFail(Tenant, { id: apiKey.tenantId });
    const context: AuthContext = {
      tenantId: tenant.id,
      tenantName: tenant.name,
      keyId: apiKey.id,
      admin: apiKey.admin,
    };
    if (this.cacheEnabled) this.verified.set(hash, context);
    return context;
  }
}
