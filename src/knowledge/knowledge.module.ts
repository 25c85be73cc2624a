import { Module } from '@nestjs/common';
import { PgVectorStore } from '../database/vector-store';
import { InferenceModule } from '../inference/inference.module';
import { registerQueue } from '../queues/queue-options';
import { queueProcessor } from '../queues/queue-processor';
import { DocumentChanges } from './document-changes';
import { DocumentFetcher } from './document-fetcher';
import { DocumentsController } from './documents.controller';
import { DocumentsService } from './documents.service';
import { IngestionPipeline } from './ingestion-pipeline';
import { INGESTION_QUEUE } from './ingestion.queue';
import { IngestJob } from './jobs/ingest.job';
import { KnowledgeBasesController } from './knowledge-bases.controller';
import { KnowledgeBasesService } from './knowledge-bases.service';
import { KnowledgeChunkRepository } from './knowledge-chunk.repository';
import { KnowledgeVectors } from './knowledge-vectors';
import { rerankerProvider } from './reranker';
import { RetrievalService } from './retrieval.service';

/**
 * Knowledge bases: documents uploaded by API or CLI, ingested on the `ingestion` queue (parse ->
 * chunk -> embed -> store, atomically per version), and hybrid retrieval (pgvector + full text,
 * reciprocal rank fusion, optional rerank). RetrievalService is the API for agents.
 */
@Module({
  imports: [
    InferenceModule,
    // The shared job defaults fit: bounded attempts with exponential backoff for transient failures
    // (embeddings server, database); malformed content fails at once, without retries.
    registerQueue(INGESTION_QUEUE),
  ],
  controllers: [KnowledgeBasesController, DocumentsController],
  providers: [
    PgVectorStore,
    KnowledgeVectors,
    KnowledgeChunkRepository,
    KnowledgeBasesService,
    DocumentsService,
    DocumentChanges,
    DocumentFetcher,
    IngestionPipeline,
    // The worker runs in the worker and all roles only (KVCHAT_ROLE); the api role only queues.
    queueProcessor(IngestJob),
    rerankerProvider,
    RetrievalService,
  ],
  exports: [RetrievalService, KnowledgeBasesService, DocumentsService, DocumentChanges],
})
export class KnowledgeModule {}
