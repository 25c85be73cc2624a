import { Entity, Index, ManyToOne, Property, Unique } from '@mikro-orm/core';
import { BaseEntity } from '../database/base.entity';
import { Tenant } from './tenant.entity';

/**
 * An API key. Only its SHA-256 hash is stored (keys are 256-bit random, so a slow hash adds
 * nothing); `prefix` (the first characters) identifies it in listings and logs.
 */
@Entity({ tableName: 'api_keys' })
export class ApiKey extends BaseEntity<'admin' | 'revokedAt' | 'lastUsedAt' | 'name'> {
  @ManyToOne(() => Tenant, { mapToPk: true, fieldName: 'tenant_id', deleteRule: 'cascade' })
  @Index()
  tenantId!: string;

  @Property({ type: 'string', length: 64 })
  @Unique()
  keyHash!: string;

  @Property({ type: 'string', length: 16 })
  prefix!: string;

  @Property({ type: 'string', length: 200, nullable: true })
  name: string | null = null;

  /** Admin keys see global statistics and may invalidate caches across tenants. */
  @Property({ type: 'boolean' })
  admin: boolean = false;

  @Property({ type: 'datetime', length: 3, nullable: true })
  revokedAt: Date | null = null;

  @Property({ type: 'datetime', length: 3, nullable: true })
  lastUsedAt: Date | null = null;
}
