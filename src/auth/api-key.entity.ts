import { ArrayType, Entity, Index, ManyToOne, Property, Unique } from '@mikro-orm/core';
import { BaseEntity } from '../database/base.entity';
import type { Budgets } from './limits/limits.types';
import type { Scope } from './scopes';
import { Tenant } from './tenant.entity';

/**
 * An API key. Only its SHA-256 hash is stored (keys are 256-bit random, so a slow hash adds
 * nothing); `prefix` (the first characters) identifies it in listings and logs. Rotation keeps the
 * record (and so its id, limits, budgets and usage history) and moves the old hash to
 * `previousKeyHash`, valid until `previousKeyExpiresAt`.
 */
@Entity({ tableName: 'api_keys' })
export class ApiKey extends BaseEntity<
  | 'admin'
  | 'revokedAt'
  | 'lastUsedAt'
  | 'name'
  | 'scopes'
  | 'models'
  | 'expiresAt'
  | 'rpm'
  | 'tpm'
  | 'budgets'
  | 'previousKeyHash'
  | 'previousKeyExpiresAt'
  | 'rotatedAt'
> {
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

  /**
   * Platform admin: acts across tenants (global statistics, every tenant's keys, caches and usage).
   * Made only by the CLI (`npm run keys:create -- --platform-admin`), never over HTTP.
   */
  @Property({ type: 'boolean' })
  admin: boolean = false;

  /** What the key may do (see scopes.ts). */
  @Property({ type: ArrayType, columnType: 'text[]', default: '{}' })
  scopes: Scope[] = [];

  /** Models the key may call; null = any model. */
  @Property({ type: ArrayType, columnType: 'text[]', nullable: true })
  models: string[] | null = null;

  /** After this instant the key is refused (401). */
  @Property({ type: 'datetime', length: 3, nullable: true })
  expiresAt: Date | null = null;

  /** Requests per minute; null = RATE_LIMIT_PER_MINUTE (0 there = unlimited). */
  @Property({ type: 'integer', nullable: true })
  rpm: number | null = null;

  /** Tokens per minute (prompt + completion, charged after each call); null = unlimited. */
  @Property({ type: 'integer', nullable: true })
  tpm: number | null = null;

  /** Token and spend caps per UTC day and month; null = none. */
  @Property({ type: 'json', nullable: true })
  budgets: Budgets | null = null;

  /** Hash of the key this one replaced by rotation, accepted until `previousKeyExpiresAt`. */
  @Property({ type: 'string', length: 64, nullable: true })
  @Unique()
  previousKeyHash: string | null = null;

  @Property({ type: 'datetime', length: 3, nullable: true })
  previousKeyExpiresAt: Date | null = null;

  @Property({ type: 'datetime', length: 3, nullable: true })
  rotatedAt: Date | null = null;

  @Property({ type: 'datetime', length: 3, nullable: true })
  revokedAt: Date | null = null;

  @Property({ type: 'datetime', length: 3, nullable: true })
  lastUsedAt: Date | null = null;
}
