import { Entity, Index, ManyToOne, Property } from '@mikro-orm/core';
import { Tenant } from '../auth/tenant.entity';
import type { ConversationContextState } from '../context/context-policy';
import { BaseEntity } from '../database/base.entity';

/** A multi-turn conversation owned by one tenant. */
@Entity({ tableName: 'conversations' })
@Index({ properties: ['tenantId', 'createdAt', 'id'] })
export class Conversation extends BaseEntity<
  'title' | 'metadata' | 'agent' | 'knowledgeBaseIds' | 'messageCount' | 'lastTurnAt' | 'context'
> {
  @ManyToOne(() => Tenant, { mapToPk: true, fieldName: 'tenant_id', deleteRule: 'cascade' })
  tenantId!: string;

  @Property({ type: 'string', length: 500, nullable: true })
  title: string | null = null;

  @Property({ type: 'json' })
  metadata: Record<string, unknown> = {};

  /** Agent pinned to this conversation (skips intent routing), or null. */
  @Property({ type: 'string', length: 100, nullable: true })
  agent: string | null = null;

  /** Knowledge bases the `knowledge` agent searches in this conversation (empty: all the tenant's). */
  @Property({ type: 'json', default: '[]' })
  knowledgeBaseIds: string[] = [];

  /** Messages stored so far; the next message gets sequence messageCount + 1. */
  @Property({ type: 'integer' })
  messageCount: number = 0;

  @Property({ type: 'datetime', length: 3, nullable: true })
  lastTurnAt: Date | null = null;

  @Property({ type: 'json', nullable: true })
  context: ConversationContextState | null = null;
}
