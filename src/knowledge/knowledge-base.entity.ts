import { Entity, Index, ManyToOne, Property, Unique } from '@mikro-orm/core';
import { Tenant } from '../auth/tenant.entity';
import { BaseEntity } from '../database/base.entity';

/** A tenant's named collection of documents; retrieval searches one or more of them. */
@Entity({ tableName: 'knowledge_bases' })
@Unique({ properties: ['tenantId', 'name'] })
export class KnowledgeBase extends BaseEntity<'description'> {
  @ManyToOne(() => Tenant, { mapToPk: true, fieldName: 'tenant_id', deleteRule: 'cascade' })
  @Index()
  tenantId!: string;

  /** Unique per tenant; the CLI refers to a knowledge base by it. */
  @Property({ type: 'string', length: 200 })
  name!: string;

  @Property({ type: 'text', nullable: true })
  description: string | null = null;
}
