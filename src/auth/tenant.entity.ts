import { Entity, Property, Unique } from '@mikro-orm/core';
import { BaseEntity } from '../database/base.entity';
import type { Budgets } from './limits/limits.types';

/**
 * A customer of the service. Every piece of tenant data carries its id; cache salts derive from it.
 * Its limits hold for all its keys together, on top of each key's own.
 */
@Entity({ tableName: 'tenants' })
export class Tenant extends BaseEntity<'rpm' | 'tpm' | 'budgets'> {
  @Property({ type: 'string', length: 200 })
  @Unique()
  name!: string;

  /** Requests per minute over all the tenant's keys; null = unlimited. */
  @Property({ type: 'integer', nullable: true })
  rpm: number | null = null;

  /** Tokens per minute over all the tenant's keys; null = unlimited. */
  @Property({ type: 'integer', nullable: true })
  tpm: number | null = null;

  /** Token and spend caps per UTC day and month over all the tenant's keys; null = none. */
  @Property({ type: 'json', nullable: true })
  budgets: Budgets | null = null;
}
