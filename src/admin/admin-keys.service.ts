import { Injectable } from '@nestjs/common';
import {
  type ApiKeyWithTenant,
  type AuthContext,
  ApiKeyService,
  type KeySettings,
} from '../auth/api-key.service';
import { Forbidden } from '../auth/auth.errors';
import type { Tenant } from '../auth/tenant.entity';
import { TenantService } from '../auth/tenant.service';
import { AuthConfig } from '../config/auth.config';
import type { CreatedKeyDto, KeySettingsDto } from './dto/key.dto';
import { KeyDto } from './dto/key.dto';

/**
 * Key management for `/v1/admin/keys`: a tenant admin (`admin` scope) manages its own tenant's keys,
 * the platform admin every tenant's. Platform-admin keys are visible to tenant admins but only the
 * platform admin may change, rotate or revoke them.
 */
@Injectable()
export class AdminKeysService {
  constructor(
    private readonly keys: ApiKeyService,
    private readonly tenants: TenantService,
    private readonly config: AuthConfig,
  ) {}

  /**
   * @throws TenantNotFound (unknown, or another tenant for a tenant admin); InvalidRequest
   */
  async create(
    auth: AuthContext,
    body: KeySettingsDto & { name: string; tenant?: string },
  ): Promise<CreatedKeyDto> {
    const tenant = await this.tenantFor(auth, body.tenant);
    const created = await this.keys.issue(tenant, { ...toSettings(body), name: body.name });
    return { ...KeyDto.from(Object.assign(created.record, { tenantName: tenant.name })), key: created.key };
  }

  async list(auth: AuthContext, query: { tenant?: string; includeRevoked?: boolean }): Promise<KeyDto[]> {
    const within = query.tenant ? (await this.tenantFor(auth, query.tenant)).id : scopeOf(auth);
    const keys = await this.keys.list(undefined, { within, includeRevoked: query.includeRevoked ?? true });
    return keys.map((k) => KeyDto.from(k));
  }

  /** @throws ApiKeyNotFound */
  async get(auth: AuthContext, id: string): Promise<KeyDto> {
    return KeyDto.from(await this.keys.get(id, scopeOf(auth)));
  }

  /** @throws ApiKeyNotFound, Forbidden (a platform-admin key, for a tenant admin), InvalidRequest */
  async update(
    auth: AuthContext,
    id: string,
    body: KeySettingsDto & { name?: string | null },
  ): Promise<KeyDto> {
    await this.changeable(auth, id);
    return KeyDto.from(await this.keys.update(id, { ...toSettings(body), name: body.name }, scopeOf(auth)));
  }

  /** @throws ApiKeyNotFound, Forbidden */
  async revoke(auth: AuthContext, id: string): Promise<KeyDto> {
    await this.changeable(auth, id);
    return KeyDto.from(await this.keys.revoke(id, scopeOf(auth)));
  }

  /** @throws ApiKeyNotFound (unknown or revoked), Forbidden */
  async rotate(auth: AuthContext, id: string, gracePeriodSeconds?: number): Promise<CreatedKeyDto> {
    await this.changeable(auth, id);
    const rotated = await this.keys.rotate(
      id,
      gracePeriodSeconds ?? this.config.API_KEY_ROTATION_GRACE_SECONDS,
      scopeOf(auth),
    );
    return {
      ...KeyDto.from(Object.assign(rotated.record, { tenantName: rotated.tenantName })),
      key: rotated.key,
    };
  }

  private async changeable(auth: AuthContext, id: string): Promise<ApiKeyWithTenant> {
    const key = await this.keys.get(id, scopeOf(auth));
    if (key.admin && !auth.admin)
      throw new Forbidden('Only the platform admin may change a platform-admin key.');
    return key;
  }

  /**
   * The tenant named (or the caller's). Another tenant is invisible to a tenant admin, as every
   * cross-tenant probe is.
   * @throws TenantNotFound
   */
  private tenantFor(auth: AuthContext, idOrName: string | undefined): Promise<Tenant> {
    return this.tenants.resolve(idOrName ?? auth.tenantId, scopeOf(auth));
  }
}

/** The tenant a caller's admin reads are limited to: its own, or none for the platform admin. */
export function scopeOf(auth: AuthContext): string | undefined {
  return auth.admin ? undefined : auth.tenantId;
}

function toSettings(body: KeySettingsDto): KeySettings {
  return {
    scopes: body.scopes,
    models: body.models,
    rpm: body.rpm,
    tpm: body.tpm,
    budgets: body.budgets === undefined ? undefined : body.budgets === null ? null : { ...body.budgets },
    expiresAt:
      body.expiresAt === undefined ? undefined : body.expiresAt === null ? null : new Date(body.expiresAt),
  };
}
