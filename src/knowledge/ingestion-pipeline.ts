import { createHash } from 'node:crypto';
import { LockMode } from '@mikro-orm/core';
import { EntityManager } from '@mikro-orm/postgresql';
import { Injectable, Logger, Optional } from '@nestjs/common';
import { EmbeddingsConfig } from '../config/caching.config';
import { KnowledgeConfig } from '../config/knowledge.config';
import { EmbeddingsService } from '../inference/embeddings.service';
import { UsageRecorder } from '../usage/usage-recorder.service';
import { Chunker, type DraftChunk } from './chunker';
import { extractText } from './document-formats';
import { Ingestion } from './ingestion.entity';
import { KnowledgeChunkRepository } from './knowledge-chunk.repository';
import { KnowledgeDocument } from './knowledge-document.entity';
import { KnowledgeVectors } from './knowledge-vectors';
import { DocumentChanges } from './document-changes';
import { DocumentUnreadable } from './knowledge.errors';
import { planReingestion } from './reingestion';

/** How an ingestion attempt ended (a transient failure throws instead, for the queue to retry). */
export type IngestionOutcome =
  | { result: 'ready'; version: number; chunks: number; embedded: number; unchanged: boolean }
  | { result: 'failed'; error: string }
  | { result: 'superseded' | 'gone' | 'finished-before' };

/** The document changed under a running ingestion (another version was applied): retry. */
export class DocumentChangedDuringIngestion extends Error {}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/**
 * The ingestion of one upload: parse -> chunk -> embed (only chunks whose content hash has no stored
 * vector, in batches of EMBEDDINGS_BATCH_SIZE, progress written after each) -> store. Storing is one
 * transaction that locks the document, swaps the chunk set (kept chunks keep their rows and vectors,
 * removed ones go, new ones come) and bumps the version, so retrieval sees the whole old version or
 * the whole new one. An upload superseded by a newer upload of the same document is not applied.
 *
 * Malformed content fails the ingestion for good (DocumentUnreadable, no retry); anything else
 * (embeddings server, database) throws, and the queue retries with backoff.
 */
@Injectable()
export class IngestionPipeline {
  private readonly logger = new Logger('Knowledge');
  readonly chunker: Chunker;

  constructor(
    private readonly em: EntityManager,
    private readonly embeddings: EmbeddingsService,
    private readonly vectors: KnowledgeVectors,
    private readonly chunks: KnowledgeChunkRepository,
    private readonly embeddingsConfig: EmbeddingsConfig,
    config: KnowledgeConfig,
    private readonly changes: DocumentChanges,
    /** Bills the embedding of new chunks (usage ledger, endpoint `ingestion`); absent in unit tests. */
    @Optional() private readonly usage?: UsageRecorder,
  ) {
    this.chunker = new Chunker({
      chunkTokens: config.KNOWLEDGE_CHUNK_TOKENS,
      overlapTokens: config.KNOWLEDGE_CHUNK_OVERLAP_TOKENS,
      leadTokens: config.KNOWLEDGE_LEAD_TOKENS,
    });
  }

  /**
   * Runs one attempt of an ingestion.
   * @param onProgress called after each embedding batch with chunks done and total
   * @throws on transient failures (the caller retries or, at the last attempt, calls `fail`)
   */
  async run(
    tenantId: string,
    ingestionId: string,
    onProgress: (done: number, total: number) => unknown = () => undefined,
  ): Promise<IngestionOutcome> {
    const started = performance.now();
    const em = this.em.fork();
    const ingestion = await em.findOne(Ingestion, { id: ingestionId, tenantId }, { populate: ['source'] });
    if (!ingestion) return { result: 'gone' };
    if (ingestion.status === 'ready' || ingestion.status === 'failed') return { result: 'finished-before' };
    const document = await em.findOne(KnowledgeDocument, { id: ingestion.documentId, tenantId });
    if (!document) return { result: 'gone' };
    if (document.latestIngestionId !== ingestion.id) return this.supersede(em, ingestion, document);

    ingestion.status = 'parsing';
    ingestion.attempts += 1;
    ingestion.startedAt ??= new Date();
    document.status = 'parsing';
    await em.flush();

    let drafts: DraftChunk[];
    let textHash: string;
    let title: string | null = null;
    try {
      if (!ingestion.source) throw new DocumentUnreadable('The upload has no stored content.');
      const extracted = await extractText(ingestion.source, ingestion.contentType, document.name);
      textHash = sha256(extracted.text);
      if (document.version > 0 && document.contentHash === textHash) {
        return this.finishUnchanged(em, ingestion, document);
      }
      drafts = await this.chunker.split(extracted);
      if (drafts.length === 0) throw new DocumentUnreadable(`${document.name} contains no text to index.`);
      if (extracted.format === 'markdown')
        title = drafts.find((d) => d.headingPath.length > 0)?.headingPath[0] ?? null;
    } catch (e) {
      if (!(e instanceof DocumentUnreadable)) throw e;
      await this.fail(tenantId, ingestionId, e.message);
      return { result: 'failed', error: e.message };
    }

    const vectors = await this.vectors.table();
    const plan = planReingestion(await this.chunks.stored(tenantId, document.id, vectors), drafts);
    const pending = vectors ? plan.toEmbed : [];
    const pendingHashes = new Set(pending.map((d) => d.contentHash));
    ingestion.status = 'embedding';
    ingestion.chunksTotal = drafts.length;
    ingestion.chunksDone = drafts.filter((d) => !pendingHashes.has(d.contentHash)).length;
    ingestion.chunksEmbedded = 0;
    document.status = 'embedding';
    await em.flush();
    await onProgress(ingestion.chunksDone, ingestion.chunksTotal);

    const embedded = new Map<string, number[]>();
    const batchSize = this.embeddingsConfig.EMBEDDINGS_BATCH_SIZE;
    for (let i = 0; i < pending.length; i += batchSize) {
      const batch = pending.slice(i, i + batchSize);
      // One call per batch of at most EMBEDDINGS_BATCH_SIZE texts: one /v1/embeddings request.
      const vectorsOfBatch = await this.embeddings.embedMany(batch.map((d) => d.embeddingText));
      batch.forEach((d, j) => embedded.set(d.contentHash, vectorsOfBatch[j]));
      const batchHashes = new Set(batch.map((d) => d.contentHash));
      ingestion.embeddingRequests += 1;
      ingestion.chunksEmbedded += batch.length;
      ingestion.chunksDone += drafts.filter((d) => batchHashes.has(d.contentHash)).length;
      await em.flush();
      await onProgress(ingestion.chunksDone, ingestion.chunksTotal);
    }

    const outcome = await this.swapIn(tenantId, ingestionId, drafts, textHash, title, vectors, embedded);
    // After the commit: listeners (cached answers citing the document) see the new version served.
    if (outcome.result === 'ready' && outcome.version > 1) {
      await this.changes.publish([
        {
          tenantId,
          knowledgeBaseId: document.knowledgeBaseId,
          documentId: document.id,
          version: outcome.version,
        },
      ]);
    }
    if (outcome.result === 'ready' && pending.length > 0)
      await this.bill(tenantId, ingestionId, pending, started);
    return outcome;
  }

  /**
   * One usage record per ingestion that embedded chunks: the chunks' tokens (cl100k counts, the
   * chunker's) as prompt tokens of the embedding model. No key: ingestion runs in a worker, after the
   * upload's request. Unchanged chunks are not embedded again, so they are not billed again.
   */
  private async bill(
    tenantId: string,
    ingestionId: string,
    embedded: readonly DraftChunk[],
    started: number,
  ): Promise<void> {
    if (!this.usage) return;
    const model = await this.embeddings.describe().then(
      (info) => info.model,
      () => this.embeddingsConfig.EMBEDDINGS_MODEL ?? 'embeddings',
    );
    this.usage.record({
      tenantId,
      requestId: `ingestion:${ingestionId}`,
      endpoint: 'ingestion',
      model,
      promptTokens: embedded.reduce((n, d) => n + d.tokenCount, 0),
      cachedTokens: 0,
      completionTokens: 0,
      latencyMs: performance.now() - started,
    });
  }

  /** The atomic swap: one transaction, the document row locked. */
  private async swapIn(
    tenantId: string,
    ingestionId: string,
    drafts: DraftChunk[],
    textHash: string,
    title: string | null,
    vectors: Awaited<ReturnType<KnowledgeVectors['table']>>,
    embedded: ReadonlyMap<string, number[]>,
  ): Promise<IngestionOutcome> {
    return this.em.fork().transactional(async (em) => {
      const ingestion = await em.findOneOrFail(Ingestion, { id: ingestionId, tenantId });
      const document = await em.findOne(
        KnowledgeDocument,
        { id: ingestion.documentId, tenantId },
        { lockMode: LockMode.PESSIMISTIC_WRITE },
      );
      if (!document) return { result: 'gone' as const };
      if (document.latestIngestionId !== ingestion.id) return this.supersede(em, ingestion, document);
      // Under the lock, diff again: another ingestion may have changed the stored chunks meanwhile.
      const plan = planReingestion(await this.chunks.stored(tenantId, document.id, vectors, em), drafts);
      if (vectors && plan.toEmbed.some((d) => !embedded.has(d.contentHash))) {
        throw new DocumentChangedDuringIngestion(
          `${document.name} changed during its ingestion; the attempt is retried`,
        );
      }
      const version = document.version + 1;
      const target = {
        tenantId,
        knowledgeBaseId: document.knowledgeBaseId,
        documentId: document.id,
        version,
      };
      await this.chunks.apply(em, target, plan, vectors, embedded);
      Object.assign(document, {
        version,
        contentType: ingestion.contentType,
        contentHash: textHash,
        sourceHash: ingestion.sourceHash,
        sizeBytes: ingestion.sizeBytes,
        chunkCount: drafts.length,
        title: title ?? document.name,
        status: 'ready',
        error: null,
      });
      Object.assign(ingestion, {
        status: 'ready',
        version,
        chunksDone: drafts.length,
        source: null,
        error: null,
        finishedAt: new Date(),
      });
      this.logger.log(
        `ingested ${document.name} v${version}: ${drafts.length} chunks, ${plan.keep.length} kept, ` +
          `${plan.insert.length} new, ${plan.remove.length} removed, ${ingestion.chunksEmbedded} embedded`,
      );
      return {
        result: 'ready' as const,
        version,
        chunks: drafts.length,
        embedded: ingestion.chunksEmbedded,
        unchanged: false,
      };
    });
  }

  private async finishUnchanged(
    em: EntityManager,
    ingestion: Ingestion,
    document: KnowledgeDocument,
  ): Promise<IngestionOutcome> {
    Object.assign(ingestion, {
      status: 'ready',
      unchanged: true,
      version: document.version,
      chunksTotal: document.chunkCount,
      chunksDone: document.chunkCount,
      source: null,
      error: null,
      finishedAt: new Date(),
    });
    Object.assign(document, {
      status: 'ready',
      error: null,
      sourceHash: ingestion.sourceHash,
      sizeBytes: ingestion.sizeBytes,
    });
    await em.flush();
    return {
      result: 'ready',
      version: document.version,
      chunks: document.chunkCount,
      embedded: 0,
      unchanged: true,
    };
  }

  private async supersede(
    em: EntityManager,
    ingestion: Ingestion,
    document: KnowledgeDocument,
  ): Promise<IngestionOutcome> {
    Object.assign(ingestion, {
      status: 'failed',
      error: `superseded by a newer upload of ${document.name} (ingestion ${document.latestIngestionId})`,
      source: null,
      finishedAt: new Date(),
    });
    await em.flush();
    return { result: 'superseded' };
  }

  /**
   * Marks an ingestion failed with its reason (no more attempts); its document too when it is the
   * latest upload. The served version, if any, stays searchable.
   */
  async fail(tenantId: string, ingestionId: string, reason: string): Promise<void> {
    const em = this.em.fork();
    const ingestion = await em.findOne(Ingestion, { id: ingestionId, tenantId });
    if (!ingestion) return;
    Object.assign(ingestion, { status: 'failed', error: reason, source: null, finishedAt: new Date() });
    const document = await em.findOne(KnowledgeDocument, { id: ingestion.documentId, tenantId });
    if (document?.latestIngestionId === ingestionId)
      Object.assign(document, { status: 'failed', error: reason });
    await em.flush();
    this.logger.warn(
      `ingestion ${ingestionId} of ${document?.name ?? 'a deleted document'} failed: ${reason}`,
    );
  }

  /** Records a failed attempt that the queue will retry. */
  async attemptFailed(tenantId: string, ingestionId: string, reason: string): Promise<void> {
    const em = this.em.fork();
    const ingestion = await em.findOne(Ingestion, { id: ingestionId, tenantId });
    if (!ingestion || ingestion.status === 'ready' || ingestion.status === 'failed') return;
    Object.assign(ingestion, {
      status: 'queued',
      error: `attempt ${ingestion.attempts} failed, retrying: ${reason}`,
    });
    const document = await em.findOne(KnowledgeDocument, { id: ingestion.documentId, tenantId });
    if (document?.latestIngestionId === ingestionId) document.status = 'queued';
    await em.flush();
  }
}
