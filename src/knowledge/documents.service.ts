import { createHash } from 'node:crypto';
import { LockMode, UniqueConstraintViolationException } from '@mikro-orm/core';
import { EntityManager } from '@mikro-orm/postgresql';
import { InjectQueue } from '@nestjs/bull';
import { Injectable, Logger } from '@nestjs/common';
import type { Queue } from 'bull';
import { KnowledgeConfig } from '../config/knowledge.config';
import { DocumentChanges } from './document-changes';
import { resolveContentType } from './document-formats';
import { Ingestion } from './ingestion.entity';
import { INGEST_JOB, INGESTION_QUEUE, type IngestJobData } from './ingestion.queue';
import { KnowledgeBase } from './knowledge-base.entity';
import { KnowledgeDocument } from './knowledge-document.entity';
import {
  DocumentNotFound,
  DocumentTooLarge,
  IngestionNotFound,
  IngestionQueueUnavailable,
  InvalidDocument,
  KnowledgeBaseNotFound,
} from './knowledge.errors';

/** One document to upload. */
export interface DocumentUpload {
  /** Document name, unique in the knowledge base: re-uploading a name replaces that document. */
  name: string;
  /** Declared MIME type (absent or generic: the name's extension decides). */
  contentType?: string | null;
  bytes: Buffer;
}

/** What an upload did. */
export interface UploadResult {
  document: KnowledgeDocument;
  ingestion: Ingestion;
  /** The bytes equal the served version's: no job was queued, nothing is embedded, the version stays. */
  unchanged: boolean;
}

/** Longest document name, characters. */
export const MAX_DOCUMENT_NAME = 500;

/**
 * Documents of a knowledge base: uploads (validated, stored with their ingestion, queued), reads of
 * their status and progress, and deletion. The `ingestion` queue's IngestJob does the work.
 */
@Injectable()
export class DocumentsService {
  private readonly logger = new Logger('Knowledge');

  constructor(
    private readonly em: EntityManager,
    private readonly config: KnowledgeConfig,
    @InjectQueue(INGESTION_QUEUE) private readonly queue: Queue<IngestJobData>,
    private readonly changes: DocumentChanges,
  ) {}

  /**
   * Checks an upload without storing it: name, size and type.
   * @returns the resolved content type
   * @throws InvalidDocument (400) for an empty or bad name or no bytes, DocumentTooLarge (413) past
   *   KNOWLEDGE_MAX_DOCUMENT_BYTES, UnsupportedDocumentType (415)
   */
  validate(upload: DocumentUpload): ReturnType<typeof resolveContentType> {
    const name = upload.name.trim();
    if (!name) throw new InvalidDocument('A document needs a non-empty name.', { field: 'name' });
    if (name.length > MAX_DOCUMENT_NAME) {
      throw new InvalidDocument(`A document name is at most ${MAX_DOCUMENT_NAME} characters.`, {
        field: 'name',
      });
    }
    const limit = this.config.KNOWLEDGE_MAX_DOCUMENT_BYTES;
    if (upload.bytes.length > limit) {
      throw new DocumentTooLarge(
        `${name} is ${upload.bytes.length} bytes, over KNOWLEDGE_MAX_DOCUMENT_BYTES (${limit} bytes).`,
        { limitBytes: limit, name },
      );
    }
    const contentType = resolveContentType(name, upload.contentType);
    if (upload.bytes.length === 0) throw new InvalidDocument(`${name} is empty (0 bytes).`, { name });
    return contentType;
  }

  /**
   * Stores an upload and queues its ingestion. A document is identified by (knowledge base, name):
   * uploading a name again replaces that document's content when the ingestion is ready; bytes equal
   * to the served version's are answered at once (ingestion `ready`, `unchanged`, no job).
   * @throws what `validate` throws, KnowledgeBaseNotFound, IngestionQueueUnavailable (503; nothing
   *   is queued and the ingestion is marked failed)
   */
  async upload(tenantId: string, knowledgeBaseId: string, upload: DocumentUpload): Promise<UploadResult> {
    const contentType = this.validate(upload);
    const name = upload.name.trim();
    const sourceHash = createHash('sha256').update(upload.bytes).digest('hex');
    const result = await this.store(tenantId, knowledgeBaseId, name, contentType, sourceHash, upload.bytes);
    if (result.unchanged) return result;
    try {
      await this.queue.add(
        INGEST_JOB,
        { tenantId, ingestionId: result.ingestion.id },
        { jobId: result.ingestion.id },
      );
    } catch (e) {
      const reason = `the ingestion queue is unavailable: ${e instanceof Error ? e.message : String(e)}`;
      await this.markFailed(tenantId, result.ingestion.id, reason);
      throw new IngestionQueueUnavailable(`${name} was not queued: ${reason}.`);
    }
    return result;
  }

  private async store(
    tenantId: string,
    knowledgeBaseId: string,
    name: string,
    contentType: KnowledgeDocument['contentType'],
    sourceHash: string,
    bytes: Buffer,
  ): Promise<UploadResult> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.em.fork().transactional(async (em) => {
          const kb = await em.findOne(KnowledgeBase, { id: knowledgeBaseId, tenantId });
          if (!kb) throw new KnowledgeBaseNotFound(knowledgeBaseId);
          const existing = await em.findOne(
            KnowledgeDocument,
            { tenantId, knowledgeBaseId, name },
            { lockMode: LockMode.PESSIMISTIC_WRITE },
          );
          const unchanged =
            existing !== null &&
            existing.version > 0 &&
            existing.sourceHash === sourceHash &&
            existing.contentType === contentType &&
            existing.status === 'ready';
          const document =
            existing ?? em.create(KnowledgeDocument, { tenantId, knowledgeBaseId, name, contentType });
          const now = new Date();
          const ingestion = em.create(Ingestion, {
            tenantId,
            knowledgeBaseId,
            documentId: document.id,
            contentType,
            sourceHash,
            sizeBytes: bytes.length,
            source: unchanged ? null : bytes,
            status: unchanged ? 'ready' : 'queued',
            unchanged,
            version: unchanged ? document.version : null,
            chunksTotal: unchanged ? document.chunkCount : 0,
            chunksDone: unchanged ? document.chunkCount : 0,
            startedAt: unchanged ? now : null,
            finishedAt: unchanged ? now : null,
          });
          if (!unchanged) {
            document.status = 'queued';
            document.latestIngestionId = ingestion.id;
          }
          return { document, ingestion, unchanged };
        });
      } catch (e) {
        // Two first uploads of one name raced; the second now finds the document.
        if (e instanceof UniqueConstraintViolationException && attempt === 0) continue;
        throw e;
      }
    }
  }

  private async markFailed(tenantId: string, ingestionId: string, reason: string): Promise<void> {
    try {
      const em = this.em.fork();
      const ingestion = await em.findOne(Ingestion, { id: ingestionId, tenantId });
      if (!ingestion) return;
      ingestion.status = 'failed';
      ingestion.error = reason;
      ingestion.source = null;
      ingestion.finishedAt = new Date();
      const document = await em.findOne(KnowledgeDocument, { id: ingestion.documentId, tenantId });
      if (document && document.latestIngestionId === ingestionId) {
        document.status = 'failed';
        document.error = reason;
      }
      await em.flush();
    } catch (e) {
      this.logger.error(`cannot mark ingestion ${ingestionId} failed: ${String(e)}`);
    }
  }

  /** The knowledge base's documents, by name. @throws KnowledgeBaseNotFound */
  async list(tenantId: string, knowledgeBaseId: string): Promise<KnowledgeDocument[]> {
    const em = this.em.fork();
    if ((await em.count(KnowledgeBase, { id: knowledgeBaseId, tenantId })) === 0) {
      throw new KnowledgeBaseNotFound(knowledgeBaseId);
    }
    return em.find(KnowledgeDocument, { tenantId, knowledgeBaseId }, { orderBy: { name: 'asc' } });
  }

  /**
   * A document with its latest ingestion (status, progress, error).
   * @throws DocumentNotFound
   */
  async get(
    tenantId: string,
    knowledgeBaseId: string,
    documentId: string,
  ): Promise<{ document: KnowledgeDocument; ingestion: Ingestion | null }> {
    const em = this.em.fork();
    const document = await em.findOne(KnowledgeDocument, { id: documentId, tenantId, knowledgeBaseId });
    if (!document) throw new DocumentNotFound(documentId);
    const ingestion = document.latestIngestionId
      ? await em.findOne(Ingestion, { id: document.latestIngestionId, tenantId })
      : await em.findOne(Ingestion, { documentId, tenantId }, { orderBy: { createdAt: 'desc' } });
    return { document, ingestion };
  }

  /** One ingestion (the Bull job id). @throws IngestionNotFound */
  async ingestion(tenantId: string, knowledgeBaseId: string, ingestionId: string): Promise<Ingestion> {
    const ingestion = await this.em.fork().findOne(Ingestion, { id: ingestionId, tenantId, knowledgeBaseId });
    if (!ingestion) throw new IngestionNotFound(ingestionId);
    return ingestion;
  }

  /**
   * Deletes a document: its chunks and vectors go in the same statement (foreign keys cascade), so
   * it stops being served at once; a queued ingestion of it finds nothing and ends.
   * @throws DocumentNotFound
   */
  async remove(tenantId: string, knowledgeBaseId: string, documentId: string): Promise<void> {
    const deleted = await this.em
      .fork()
      .nativeDelete(KnowledgeDocument, { id: documentId, tenantId, knowledgeBaseId });
    if (deleted === 0) throw new DocumentNotFound(documentId);
    await this.changes.publish([{ tenantId, knowledgeBaseId, documentId, version: null }]);
  }
}
