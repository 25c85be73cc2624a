import { Entity, Enum, Index, ManyToOne, Property, Unique } from '@mikro-orm/core';
import { Tenant } from '../auth/tenant.entity';
import { BaseEntity } from '../database/base.entity';
import { KnowledgeBase } from './knowledge-base.entity';

/** Where an ingestion (and so its document) stands. */
export const INGESTION_STATUSES = ['queued', 'parsing', 'embedding', 'ready', 'failed'] as const;
export type IngestionStatus = (typeof INGESTION_STATUSES)[number];

/** Document formats the parser reads, by MIME type. */
export const DOCUMENT_CONTENT_TYPES = [
  'text/markdown',
  'text/plain',
  'text/html',
  'application/pdf',
] as const;
export type DocumentContentType = (typeof DOCUMENT_CONTENT_TYPES)[number];

/**
 * A document of a knowledge base, identified by (knowledge base, name). `version` is the version
 * served by retrieval (0 until the first ingestion is ready) and grows by one at every change of
 * content; `status` is that of the latest upload. A failed re-ingestion leaves the previous version
 * searchable: chunks are swapped in one transaction, never half-way.
 */
@Entity({ tableName: 'knowledge_documents' })
@Unique({ properties: ['knowledgeBaseId', 'name'] })
@Index({ properties: ['tenantId', 'knowledgeBaseId'] })
export class KnowledgeDocument extends BaseEntity<
  'version' | 'status' | 'contentHash' | 'sourceHash' | 'chunkCount' | 'error' | 'latestIngestionId' | 'title'
> {
  @ManyToOne(() => Tenant, { mapToPk: true, fieldName: 'tenant_id', deleteRule: 'cascade' })
  tenantId!: string;

  @ManyToOne(() => KnowledgeBase, { mapToPk: true, fieldName: 'knowledge_base_id', deleteRule: 'cascade' })
  knowledgeBaseId!: string;

  /** File name or client-chosen name (a relative path for folders ingested by the CLI). */
  @Property({ type: 'string', length: 500 })
  name!: string;

  @Property({ type: 'string', length: 100 })
  contentType!: DocumentContentType;

  /** Title of the served version: its first heading, else its name. */
  @Property({ type: 'string', length: 500, nullable: true })
  title: string | null = null;

  /** Version served by retrieval; 0 = none yet. */
  @Property({ type: 'integer' })
  version: number = 0;

  @Enum({ items: () => INGESTION_STATUSES, type: 'string' })
  status: IngestionStatus = 'queued';

  /** SHA-256 of the served version's extracted text (unchanged text is not re-chunked). */
  @Property({ type: 'string', length: 64, nullable: true })
  contentHash: string | null = null;

  /** SHA-256 of the served version's uploaded bytes (an identical upload is answered without a job). */
  @Property({ type: 'string', length: 64, nullable: true })
  sourceHash: string | null = null;

  /** Size of the served version's upload, bytes. */
  @Property({ type: 'integer', nullable: true })
  sizeBytes: number | null = null;

  /** Chunks of the served version. */
  @Property({ type: 'integer' })
  chunkCount: number = 0;

  /** Why the latest ingestion failed (the previous version, if any, is still served). */
  @Property({ type: 'text', nullable: true })
  error: string | null = null;

  /** The latest upload's ingestion; an older one that finishes later is superseded, not applied. */
  @Property({ type: 'uuid', nullable: true })
  latestIngestionId: string | null = null;
}
