import { Entity, Index, ManyToOne, Property } from '@mikro-orm/core';
import { Tenant } from '../auth/tenant.entity';
import { BaseEntity } from '../database/base.entity';
import { KnowledgeBase } from './knowledge-base.entity';
import { KnowledgeDocument } from './knowledge-document.entity';

/**
 * One chunk of a document's served version: a passage under one heading path, at most
 * KNOWLEDGE_CHUNK_TOKENS tokens, with its character offsets in the document's extracted text
 * (Markdown for Markdown and HTML, plain text for text and PDF) for citations.
 *
 * `tsv` is a generated column (English stemming; heading path weighted A, text B) with a GIN
 * index, for full-text search. Embeddings live in a table per embedding model and dimension,
 * created at runtime when pgvector is available (knowledge-vectors.ts), keyed by the chunk id.
 * Chunks are written and replaced only by the ingestion's one transaction (chunk-store.ts).
 */
@Entity({ tableName: 'knowledge_chunks' })
@Index({ properties: ['tenantId', 'knowledgeBaseId'] })
@Index({ properties: ['documentId', 'ordinal'] })
@Index({
  name: 'knowledge_chunks_tsv_index',
  expression: 'create index "knowledge_chunks_tsv_index" on "knowledge_chunks" using gin ("tsv")',
})
export class KnowledgeChunk extends BaseEntity {
  @ManyToOne(() => Tenant, { mapToPk: true, fieldName: 'tenant_id', deleteRule: 'cascade' })
  tenantId!: string;

  @ManyToOne(() => KnowledgeBase, { mapToPk: true, fieldName: 'knowledge_base_id', deleteRule: 'cascade' })
  knowledgeBaseId!: string;

  @ManyToOne(() => KnowledgeDocument, { mapToPk: true, fieldName: 'document_id', deleteRule: 'cascade' })
  documentId!: string;

  /** Position in the document, 0-based. */
  @Property({ type: 'integer' })
  ordinal!: number;

  /** Headings above the chunk, outermost first (`["Tent", "Setup", "Step 1"]`; `["Page 3"]` for a PDF). */
  @Property({ type: 'json' })
  headingPath!: string[];

  /** `headingPath` joined with " > ", as indexed and embedded. */
  @Property({ type: 'text' })
  heading!: string;

  /** Start offset in the extracted text, characters (UTF-16 code units), inclusive. */
  @Property({ type: 'integer' })
  startOffset!: number;

  /** End offset in the extracted text, characters, exclusive. */
  @Property({ type: 'integer' })
  endOffset!: number;

  @Property({ type: 'text' })
  text!: string;

  /** Tokens of `text` (cl100k_base). */
  @Property({ type: 'integer' })
  tokenCount!: number;

  /** SHA-256 of what is embedded (heading + text): an identical chunk keeps its embedding. */
  @Property({ type: 'string', length: 64 })
  contentHash!: string;

  /** Document version that wrote or last kept this chunk. */
  @Property({ type: 'integer' })
  version!: number;

  @Property({
    type: 'tsvector',
    columnType: 'tsvector',
    // Spelled as PostgreSQL prints it back, so the schema diff sees no change.
    generated: `(setweight(to_tsvector('english'::regconfig, heading), 'A'::"char") || setweight(to_tsvector('english'::regconfig, text), 'B'::"char")) stored`,
    lazy: true,
    nullable: true,
  })
  tsv?: string;
}
