import { Entity, Property, Unique } from '@mikro-orm/core';
import { BaseEntity } from '../database/base.entity';

/** A customer of the service. Every piece of tenant data carries its id; cache salts derive from it. */
@Entity({ tableName: 'tenants' })
export class Tenant extends BaseEntity {
  @Property({ type: 'string', length: 200 })
  @Unique()
  name!: string;
}
