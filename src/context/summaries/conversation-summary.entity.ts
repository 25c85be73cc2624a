import { Entity, Index, ManyToOne, Property, Unique } from '@mikro-orm/core';
import { Tenant } from '../../auth/tenant.entity';
import { BaseEntity } from '../../database/base.entity';

/**
 * A rolling summary of a conversation's messages 1..throughSequence, made by the `summaries` job.
 * The `summary` context policy swaps it in at a compaction (placed right after the stable prefix),
 * so a summary is written once and then stays byte-identical until the next compaction.
 */
@Entity({ tableName: 'conversation_summaries' })
@Unique({ properties: ['conversationId', 'throughSequence'] })
@Index({ properties: ['tenantId', 'conversationId', 'throughSequence'] })
export class ConversationSummary extends BaseEntity<'tokenCount' | 'model'> {
  @ManyToOne(() => Tenant, { mapToPk: true, fieldName: 'tenant_id', deleteRule: 'cascade' })
  tenantId!: string;

  /**
   * The summarised conversation (foreign key, deleted with it). Named by entity name, not by class:
   * context sits below the conversations module and does not import it.
   */
  @ManyToOne('Conversation', { mapToPk: true, fieldName: 'conversation_id', deleteRule: 'cascade' })
  conversationId!: string;

  /** Messages with sequence <= this are covered. */
  @Property({ type: 'integer' })
  throughSequence!: number;

  @Property({ type: 'text' })
  content!: string;

  /** Tokens of `content`, counted with the engine's tokenizer. */
  @Property({ type: 'integer', nullable: true })
  tokenCount: number | null = null;

  /** Version of the prompt that wrote it: the summarizer agent's stable prefix (`global@1+summarizer@1`). */
  @Property({ type: 'string', length: 100 })
  templateVersion!: string;

  @Property({ type: 'string', length: 200, nullable: true })
  model: string | null = null;
}
