import { createHash, randomBytes } from 'node:crypto';
import { EntityManager } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { InvalidRequest } from '../common/domain-error';
import { AppConfig } from '../config/app.config';
import { ApiKey } from './api-key.entity';
import { ApiKeyNotFound, Unauthorized } from './auth.errors';
import { type Budgets, type Limits } from './limits/limits.types';
import { validateLimits } from './limits/validate-limits';
import { DEFAULT_SCOPES, isScope, type Scope, SCOPES } from './scopes';
import { Tenant } from './tenant.entity';

/** Who is calling: resolved from the API key on every request. */
export interface AuthContext {
  tenantId: string;
  tenantName: string;
  keyId: string;
  /** Platform admin: acts across tenants (global statistics, every tenant's keys, caches and usage). */
  admin: boolean;
  /** What the key may do; absent on contexts made inside the service (jobs, stats sources): none. */
  scopes?: readonly Scope[];
  /** Models the key may call; null or absent = any model. */
  models?: readonly string[] | null;
  /** The key's own limits and its tenant's; absent = no limit (internal callers). */
  limits?: { key: Limits; tenant: Limits };
}

/** Settings of a key; on update a field left out is kept and null clears it. */
export interface KeySettings {
  name?: string | null;
  scopes?: readonly Scope[];
  /** Model allow-list; null = any model. */
  models?: readonly string[] | null;
  rpm?: number | null;
  tpm?: number | null;
  expiresAt?: Date | null;
  budgets?: Budgets | null;
}

/** A freshly created or rotated key. `key` is shown once and never stored. */
export interface CreatedApiKey {
  key: string;
  keyId: string;
  prefix: string;
  tenantId: string;
  tenantName: string;
  admin: boolean;
  record: ApiKey;
}

/** A stored key with its tenant's name, as listings show it (never the secret or its hash). */
export type ApiKeyWithTenant = ApiKey & { tenantName: string };

const KEY_PREFIX = 'kvc_';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** SHA-256 hex of a key; what the database stores. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

function newSecret(): string {
  return KEY_PREFIX + randomBytes(32).toString('base64url');
}

/**
 * Creates, verifies, changes, rotates and revokes API keys — for the CLI and `/v1/admin/keys` alike.
 * Keys are `kvc_` + 43 base64url characters (256 random bits); only their hash is stored.
 *
 * Verified keys are remembered in memory for API_KEY_CACHE_SECONDS so a request does not cost a
 * database round trip. That is also the bound on how long a change (revocation, new limits or
 * scopes) takes to reach another running replica; on the replica that made the change it is
 * immediate. An entry never outlives the key's expiry or a rotated key's grace period.
 *
 * `within` (a tenant id) restricts lookups to one tenant (a tenant admin's view); undefined = all.
 */
@Injectable()
export class ApiKeyService {
  private readonly verified: LRUCache<string, AuthContext>;
  private readonly cacheTtlMs: number;

  constructor(
    private readonly em: EntityManager,
    private readonly config: AppConfig,
  ) {
    this.cacheTtlMs = config.API_KEY_CACHE_SECONDS * 1000;
    this.verified = new LRUCache({ max: 10_000, ttl: Math.max(1, this.cacheTtlMs) });
  }

  /**
   * Creates a key for `tenantName`, creating the tenant if it does not exist (the CLI's and tests' way).
   * `admin` makes a platform admin (all scopes). Without `scopes`, a key gets DEFAULT_SCOPES.
   * @returns the key in clear (shown once) and its identifiers
   */
  async create(tenantName: string, options: KeySettings & { admin?: boolean } = {}): Promise<CreatedApiKey> {
    const em = this.em.fork();
    let tenant = await em.findOne(Tenant, { name: tenantName });
    if (!tenant) {
      tenant = em.create(Tenant, { name: tenantName });
      await em.flush();
    }
    return this.issue(tenant, options);
  }

  /**
   * Creates a key for an existing tenant (the admin API's way).
   * @throws InvalidRequest for a bad scope or limit
   */
  async issue(tenant: Tenant, options: KeySettings & { admin?: boolean } = {}): Promise<CreatedApiKey> {
    const admin = options.admin ?? false;
    const scopes = admin ? [...SCOPES] : checkScopes(options.scopes ?? DEFAULT_SCOPES);
    validateLimits(options);
    const em = this.em.fork();
    const key = newSecret();
    const apiKey = em.create(ApiKey, {
      tenantId: tenant.id,
      keyHash: hashApiKey(key),
      prefix: key.slice(0, 12),
      name: options.name ?? null,
      admin,
      scopes,
      models: checkModels(options.models),
      rpm: options.rpm ?? null,
      tpm: options.tpm ?? null,
      expiresAt: options.expiresAt ?? null,
      budgets: options.budgets ?? null,
    });
    await em.flush();
    return {
      key,
      keyId: apiKey.id,
      prefix: apiKey.prefix,
      tenantId: tenant.id,
      tenantName: tenant.name,
      admin,
      record: apiKey,
    };
  }

  /**
   * Revokes a key given in clear, by id or by prefix.
   * @throws ApiKeyNotFound when nothing matches (or a prefix is ambiguous, or the key is not `within`)
   */
  async revoke(keyOrIdOrPrefix: string, within?: string): Promise<ApiKeyWithTenant> {
    const em = this.em.fork();
    const candidates = await em.find(ApiKey, {
      $or: [
        { keyHash: hashApiKey(keyOrIdOrPrefix) },
        { prefix: keyOrIdOrPrefix },
        ...(UUID.test(keyOrIdOrPrefix) ? [{ id: keyOrIdOrPrefix }] : []),
      ],
      ...(within !== undefined ? { tenantId: within } : {}),
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
    return this.withTenantName(em, apiKey);
  }

  /** Keys (never their secrets), oldest first, optionally of one tenant (by name) or `within` one (by id). */
  async list(
    tenantName?: string,
    options: { within?: string; includeRevoked?: boolean } = {},
  ): Promise<ApiKeyWithTenant[]> {
    const em = this.em.fork();
    const tenants = await em.find(Tenant, {
      ...(tenantName ? { name: tenantName } : {}),
      ...(options.within !== undefined ? { id: options.within } : {}),
    });
    const names = new Map(tenants.map((t) => [t.id, t.name]));
    const keys = await em.find(
      ApiKey,
      {
        tenantId: { $in: [...names.keys()] },
        ...(options.includeRevoked === false ? { revokedAt: null } : {}),
      },
      { orderBy: { createdAt: 'asc', id: 'asc' } },
    );
    return keys.map((k) => Object.assign(k, { tenantName: names.get(k.tenantId) ?? '' }));
  }

  /** @throws ApiKeyNotFound when no key has that id (in `within`) */
  async get(id: string, within?: string): Promise<ApiKeyWithTenant> {
    const em = this.em.fork();
    return this.withTenantName(em, await this.find(em, id, within));
  }

  /**
   * Changes a key's settings (fields left out are kept, null clears).
   * @throws ApiKeyNotFound, InvalidRequest
   */
  async update(id: string, settings: KeySettings, within?: string): Promise<ApiKeyWithTenant> {
    validateLimits(settings);
    const em = this.em.fork();
    const apiKey = await this.find(em, id, within);
    if (settings.name !== undefined) apiKey.name = settings.name;
    if (settings.scopes !== undefined)
      apiKey.scopes = apiKey.admin ? [...SCOPES] : checkScopes(settings.scopes);
    if (settings.models !== undefined) apiKey.models = checkModels(settings.models);
    if (settings.rpm !== undefined) apiKey.rpm = settings.rpm;
    if (settings.tpm !== undefined) apiKey.tpm = settings.tpm;
    if (settings.expiresAt !== undefined) apiKey.expiresAt = settings.expiresAt;
    if (settings.budgets !== undefined) apiKey.budgets = settings.budgets;
    await em.flush();
    this.verified.clear();
    return this.withTenantName(em, apiKey);
  }

  /**
   * Gives a key a new secret. The old secret keeps working for `graceSeconds` (0 = not at all), so
   * clients can switch without an outage; the key keeps its id, settings, budgets and usage.
   * A second rotation ends the first one's grace period.
   * @throws ApiKeyNotFound for an unknown or revoked key
   */
  async rotate(id: string, graceSeconds: number, within?: string): Promise<CreatedApiKey> {
    if (!Number.isInteger(graceSeconds) || graceSeconds < 0) {
      throw new InvalidRequest('gracePeriodSeconds must be an integer >= 0.');
    }
    const em = this.em.fork();
    const apiKey = await this.find(em, id, within);
    if (apiKey.revokedAt) throw new ApiKeyNotFound(`Key ${id} is revoked; it cannot be rotated.`);
    const key = newSecret();
    const now = new Date();
    apiKey.previousKeyHash = graceSeconds > 0 ? apiKey.keyHash : null;
    apiKey.previousKeyExpiresAt = graceSeconds > 0 ? new Date(now.getTime() + graceSeconds * 1000) : null;
    apiKey.keyHash = hashApiKey(key);
    apiKey.prefix = key.slice(0, 12);
    apiKey.rotatedAt = now;
    await em.flush();
    this.verified.clear();
    const tenant = await em.findOneOrFail(Tenant, { id: apiKey.tenantId });
    return {
      key,
      keyId: apiKey.id,
      prefix: apiKey.prefix,
      tenantId: tenant.id,
      tenantName: tenant.name,
      admin: apiKey.admin,
      record: apiKey,
    };
  }

  /**
   * Resolves a presented key to its tenant, scopes and limits.
   * @throws Unauthorized for an unknown, revoked or expired key, or a rotated-out key past its grace period
   */
  async verify(key: string): Promise<AuthContext> {
    const hash = hashApiKey(key);
    const cached = this.cacheTtlMs > 0 ? this.verified.get(hash) : undefined;
    if (cached) return cached;
    const em = this.em.fork();
    const apiKey = await em.findOne(ApiKey, { $or: [{ keyHash: hash }, { previousKeyHash: hash }] });
    const now = Date.now();
    if (!apiKey || apiKey.revokedAt) throw new Unauthorized('The API key is unknown or revoked.');
    const viaPrevious = apiKey.keyHash !== hash;
    if (viaPrevious && (apiKey.previousKeyExpiresAt?.getTime() ?? 0) <= now) {
      throw new Unauthorized('The API key was rotated and its grace period has ended.');
    }
    if (apiKey.expiresAt && apiKey.expiresAt.getTime() <= now) {
      throw new Unauthorized('The API key has expired.');
    }
    const tenant = await em.findOneOrFail(Tenant, { id: apiKey.tenantId });
    const context: AuthContext = {
      tenantId: tenant.id,
      tenantName: tenant.name,
      keyId: apiKey.id,
      admin: apiKey.admin,
      scopes: apiKey.admin ? [...SCOPES] : apiKey.scopes,
      models: apiKey.models,
      limits: {
        key: { rpm: apiKey.rpm, tpm: apiKey.tpm, budgets: apiKey.budgets },
        tenant: { rpm: tenant.rpm, tpm: tenant.tpm, budgets: tenant.budgets },
      },
    };
    if (this.cacheTtlMs > 0) {
      // Never remember a key past the instant it stops being valid.
      const ends = [apiKey.expiresAt, viaPrevious ? apiKey.previousKeyExpiresAt : null]
        .filter((d): d is Date => d !== null)
        .map((d) => d.getTime() - now);
      const ttl = Math.min(this.cacheTtlMs, ...ends);
      if (ttl > 0) this.verified.set(hash, context, { ttl });
    }
    return context;
  }

  private async find(em: EntityManager, id: string, within?: string): Promise<ApiKey> {
    const apiKey = UUID.test(id)
      ? await em.findOne(ApiKey, { id, ...(within !== undefined ? { tenantId: within } : {}) })
      : null;
    if (!apiKey) throw new ApiKeyNotFound(`No API key ${JSON.stringify(id)}.`);
    return apiKey;
  }

  private async withTenantName(em: EntityManager, apiKey: ApiKey): Promise<ApiKeyWithTenant> {
    const tenant = await em.findOne(Tenant, { id: apiKey.tenantId });
    return Object.assign(apiKey, { tenantName: tenant?.name ?? '' });
  }
}

/** @throws InvalidRequest naming an unknown scope */
function checkScopes(scopes: readonly string[]): Scope[] {
  const unknown = scopes.filter((s) => !isScope(s));
  if (unknown.length > 0) {
    throw new InvalidRequest(`Unknown scope(s) ${unknown.join(', ')}; scopes are ${SCOPES.join(', ')}.`);
  }
  return [...new Set(scopes as readonly Scope[])];
}

/** @throws InvalidRequest for an empty or over-long model name */
function checkModels(models: readonly string[] | null | undefined): string[] | null {
  if (models === undefined || models === null) return null;
  if (models.some((m) => typeof m !== 'string' || m.length === 0 || m.length > 200)) {
    throw new InvalidRequest('models must be model names of 1..200 characters.');
  }
  return [...new Set(models)];
}
