import { EntityManager } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import { InvalidRequest } from '../common/domain-error';
import { TenantExists, TenantNotFound } from './auth.errors';
import { type Budgets } from './limits/limits.types';
import { validateLimits } from './limits/validate-limits';
import { Tenant } from './tenant.entity';

/** A tenant's settable limits; a field left out is unchanged, null clears it. */
export interface TenantSettings {
  rpm?: number | null;
  tpm?: number | null;
  budgets?: Budgets | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Tenants: create, list, read and change their limits. `within` restricts every read to one tenant
 * (a tenant admin's view); undefined = every tenant (the platform admin, the CLI).
 */
@Injectable()
export class TenantService {
  constructor(private readonly em: EntityManager) {}

  /**
   * @throws TenantExists when the name is taken
   * @throws InvalidRequest for a bad name or limit
   */
  async create(name: string, settings: TenantSettings = {}): Promise<Tenant> {
    const trimmed = name.trim();
    if (trimmed.length === 0 || trimmed.length > 200)
      throw new InvalidRequest('name must be 1..200 characters.');
    validateLimits(settings);
    const em = this.em.fork();
    if (await em.findOne(Tenant, { name: trimmed }))
      throw new TenantExists(`A tenant named "${trimmed}" exists.`);
    const tenant = em.create(Tenant, {
      name: trimmed,
      rpm: settings.rpm ?? null,
      tpm: settings.tpm ?? null,
      budgets: settings.budgets ?? null,
    });
    await em.flush();
    return tenant;
  }

  /** Tenants by name, optionally only `within`. */
  async list(within?: string): Promise<Tenant[]> {
    return this.em.fork().find(Tenant, within ? { id: within } : {}, { orderBy: { name: 'asc' } });
  }

  /**
   * A tenant by id or name.
   * @throws TenantNotFound when none matches or it is not `within`
   */
  async resolve(idOrName: string, within?: string): Promise<Tenant> {
    const tenant = await this.em
      .fork()
      .findOne(
        Tenant,
        UUID.test(idOrName) ? { $or: [{ id: idOrName }, { name: idOrName }] } : { name: idOrName },
      );
    if (!tenant || (within !== undefined && tenant.id !== within)) {
      throw new TenantNotFound(`No tenant ${JSON.stringify(idOrName)}.`);
    }
    return tenant;
  }

  /**
   * Changes a tenant's limits (fields left out are kept, null clears). Running replicas apply them
   * within API_KEY_CACHE_SECONDS.
   * @throws TenantNotFound, InvalidRequest
   */
  async update(idOrName: string, settings: TenantSettings): Promise<Tenant> {
    validateLimits(settings);
    const em = this.em.fork();
    const found = await this.resolve(idOrName);
    const tenant = await em.findOneOrFail(Tenant, { id: found.id });
    if (settings.rpm !== undefined) tenant.rpm = settings.rpm;
    if (settings.tpm !== undefined) tenant.tpm = settings.tpm;
    if (settings.budgets !== undefined) tenant.budgets = settings.budgets;
    await em.flush();
    return tenant;
  }
}
