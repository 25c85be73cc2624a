import { Entity, Enum, Index, ManyToOne, Property } from '@mikro-orm/core';
import { Tenant } from '../auth/tenant.entity';
import { BaseEntity } from '../database/base.entity';
import { KnowledgeBase } from './knowledge-base.entity';
import {
  type DocumentContentType,
  INGESTION_STATUSES,
  type IngestionStatus,
  KnowledgeDocument,
} from './knowledge-document.entity';

/**
 * One upload of a document going through the `ingestion` queue (its id is the Bull job id):
 * parse -> chunk -> embed -> store. Progress is `chunksDone` of `chunksTotal` (chunks whose
 * embedding is known: reused from the previous version or embedded now). The uploaded bytes are
 * kept in `source` until the ingestion ends, so retries need nothing else.
 */
@Entity({ tableName: 'knowledge_ingestions' })
@Index({ properties: ['tenantId', 'knowledgeBaseId'] })
export class Ingestion extends BaseEntity<
  | 'status'
  | 'chunksTotal'
  | 'chunksDone'
  | 'chunksEmbedded'
  | 'embeddingRequests'
  | 'attempts'
  | 'version'
  | 'error'
  | 'unchanged'
  | 'startedAt'
  | 'finishedAt'
> {
  @ManyToOne(() => Tenant, { mapToPk: true, fieldName: 'tenant_id', deleteRule: 'cascade' })
  tenantId!: string;

  @ManyToOne(() => KnowledgeBase, { mapToPk: true, fieldName: 'knowledge_base_id', deleteRule: 'cascade' })
  knowledgeBaseId!: string;

  @ManyToOne(() => KnowledgeDocument, { mapToPk: true, fieldName: 'document_id', deleteRule: 'cascade' })
  @Index()
  documentId!: string;

  @Enum({ items: () => INGESTION_STATUSES, type: 'string' })
  status: IngestionStatus = 'queued';

  @Property({ type: 'string', length: 100 })
  contentType!: DocumentContentType;

  /** SHA-256 of the uploaded bytes. */
  @Property({ type: 'string', length: 64 })
  sourceHash!: string;

  @Property({ type: 'integer' })
  sizeBytes!: number;

  /** The uploaded bytes, until the ingestion ends (then null). */
  @Property({ type: 'blob', nullable: true, lazy: true })
  source: Buffer | null = null;

  @Property({ type: 'integer' })
  chunksTotal: number = 0;

  @Property({ type: 'integer' })
  chunksDone: number = 0;

  /** Chunks embedded by this ingestion (the others kept the embedding of an identical chunk). */
  @Property({ type: 'integer' })
  chunksEmbedded: number = 0;

  /** `/v1/embeddings` requests made by this ingestion. */
  @Property({ type: 'integer' })
  embeddingRequests: number = 0;

  /** Attempts started (the queue retries transient failures with backoff). */
  @Property({ type: 'integer' })
  attempts: number = 0;

  /** The document version this ingestion made (or found unchanged), once ready. */
  @Property({ type: 'integer', nullable: true })
  version: number | null = null;

  /** True when the content equalled the served version's: nothing was re-chunked or embedded. */
  @Property({ type: 'boolean' })
  unchanged: boolean = false;

  @Property({ type: 'text', nullable: true })
  error: string | null = null;

  @Property({ type: 'datetime', length: 3, nullable: true })
  startedAt: Date | null = null;

  @Property({ type: 'datetime', length: 3, nullable: true })
  finishedAt: Date | null = null;
}
