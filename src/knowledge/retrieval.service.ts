import { IsolationLevel } from '@mikro-orm/core';
import { EntityManager } from '@mikro-orm/postgresql';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { InvalidRequest } from '../common/domain-error';
import { KnowledgeConfig } from '../config/knowledge.config';
import { EmbeddingsUnavailable } from '../inference/embeddings.errors';
import { EmbeddingsService } from '../inference/embeddings.service';
import { type ChunkHit, KnowledgeChunkRepository } from './knowledge-chunk.repository';
import { type KnowledgeVectorTable, KnowledgeVectors } from './knowledge-vectors';
import { QueryEmbeddingMismatch } from './knowledge.errors';
import { PASSAGE_RERANKER, type PassageReranker } from './reranker';
import { reciprocalRankFusion } from './rrf';

/** Which methods rank passages: both fused (default), or one alone (benchmarks, debugging). */
export const RETRIEVAL_MODES = ['hybrid', 'vector', 'fullText'] as const;
export type RetrievalMode = (typeof RETRIEVAL_MODES)[number];

/** A retrieval request. */
export interface RetrieveRequest {
  tenantId: string;
  /** Knowledge bases to search (ids of this tenant's; others' match nothing). */
  knowledgeBaseIds: readonly string[];
  /** The question, as the user wrote it. */
  query: string;
  /**
   * The query's embedding by the current embedding model (EmbeddingsService), when the caller has it
   * already (a turn embeds its message once for routing, the response cache and retrieval).
   * Omitted: embedded here.
   */
  queryEmbedding?: readonly number[];
  /** Passages to return; default KNOWLEDGE_SEARCH_K. */
  k?: number;
  /** Default `hybrid`. */
  mode?: RetrievalMode;
  /** Re-order the fused top KNOWLEDGE_RERANK_CANDIDATES with the reranker (needs KNOWLEDGE_RERANK_URL). */
  rerank?: boolean;
  signal?: AbortSignal;
}

/**
 * A passage to cite: where it is, what it says (the ChunkHit fields: chunk, document, version, headings,
 * character offsets, text), and how it ranked.
 */
export interface RetrievedPassage extends ChunkHit {
  /**
   * Ranking score, higher is better: the reranker's relevance when reranked; else, in hybrid mode,
   * the reciprocal-rank-fusion score (sum of 1 / (KNOWLEDGE_RRF_K + rank)); in a single mode, that
   * method's score (cosine similarity, or ts_rank_cd).
   */
  score: number;
  /** 1-based rank of the passage in each method that found it. */
  ranks: { vector?: number; fullText?: number; rerank?: number };
  /** Cosine similarity to the query, when vector search found it. */
  similarity?: number;
}

/** What a retrieval returned and how. */
export interface RetrievalResult {
  passages: RetrievedPassage[];
  /** The methods that ran (a vector or hybrid request runs full-text only when vectors are unavailable). */
  mode: RetrievalMode;
  /** Why vector search did not run, when it was asked for. */
  degraded?: string;
  reranked: boolean;
  /** Why the reranker's order was not applied (error, timeout); the fused order is kept. */
  rerankError?: string;
}

/**
 * Hybrid retrieval over knowledge bases: pgvector nearest neighbours (HNSW, cosine) and PostgreSQL
 * full-text search (tsvector, GIN), each taking the top KNOWLEDGE_SEARCH_CANDIDATES of the tenant's
 * chosen knowledge bases in one repeatable-read snapshot, fused by reciprocal rank fusion, then
 * optionally reranked. Only served versions are ever seen: chunks change in one transaction.
 *
 * This is the API the knowledge agent calls: `retrieve({tenantId, knowledgeBaseIds, query,
 * queryEmbedding?, k})`.
 */
@Injectable()
export class RetrievalService {
  private readonly logger = new Logger('Knowledge');
  private lastEmbeddingsError?: string;

  constructor(
    private readonly em: EntityManager,
    private readonly config: KnowledgeConfig,
    private readonly chunks: KnowledgeChunkRepository,
    private readonly vectors: KnowledgeVectors,
    private readonly embeddings: EmbeddingsService,
    @Inject(PASSAGE_RERANKER) private readonly reranker: PassageReranker | null,
  ) {}

  /** Whether a reranker is configured. */
  get canRerank(): boolean {
    return this.reranker !== null;
  }

  /**
   * The best `k` passages for the query, best first.
   * @throws InvalidRequest (400) for an empty query, a bad `k`, or `rerank` without a reranker;
   *   QueryEmbeddingMismatch (400) when `queryEmbedding` has another dimension than the collection's
   */
  async retrieve(request: RetrieveRequest): Promise<RetrievalResult> {
    const mode = request.mode ?? 'hybrid';
    const k = request.k ?? this.config.KNOWLEDGE_SEARCH_K;
    if (!request.query.trim()) throw new InvalidRequest('The query is empty.', { field: 'query' });
    if (!Number.isInteger(k) || k < 1 || k > 100) {
      throw new InvalidRequest(`k must be an integer from 1 to 100, got ${k}.`, { field: 'k' });
    }
    if (request.rerank && !this.reranker) {
      throw new InvalidRequest(
        'rerank was asked for, but no reranker is configured (KNOWLEDGE_RERANK_URL).',
        {
          field: 'rerank',
        },
      );
    }
    let degraded: string | undefined;
    let table: KnowledgeVectorTable | null = null;
    let embedding: readonly number[] | null = null;
    if (mode !== 'fullText') {
      ({ table, embedding, degraded } = await this.queryVector(request));
    }
    const runVector = embedding !== null && table !== null;
    const runFullText = mode !== 'vector' || !runVector;
    const effective: RetrievalMode = runVector && runFullText ? 'hybrid' : runVector ? 'vector' : 'fullText';
    const candidates = Math.max(this.config.KNOWLEDGE_SEARCH_CANDIDATES, k);
    const scope = { tenantId: request.tenantId, knowledgeBaseIds: request.knowledgeBaseIds };
    const [vectorHits, textHits] = await this.em
      .fork()
      .transactional(
        async (em) => [
          runVector ? await this.chunks.vectorSearch(em, scope, table!, embedding!, candidates) : [],
          runFullText ? await this.chunks.fullTextSearch(em, scope, request.query, candidates) : [],
        ],
        { isolationLevel: IsolationLevel.REPEATABLE_READ, readOnly: true },
      );

    let passages = this.rank(effective, vectorHits, textHits);
    let reranked = false;
    let rerankError: string | undefined;
    if (request.rerank && this.reranker && passages.length > 0) {
      const head = passages.slice(0, this.config.KNOWLEDGE_RERANK_CANDIDATES);
      try {
        const scores = await this.reranker.score(
          request.query,
          head.map((p) => p.text),
          request.signal,
        );
        const order = head.map((p, i) => ({ p, s: scores[i] })).sort((a, b) => b.s - a.s);
        passages = [
          ...order.map(({ p, s }, i) => ({ ...p, score: s, ranks: { ...p.ranks, rerank: i + 1 } })),
          ...passages.slice(head.length),
        ];
        reranked = true;
      } catch (e) {
        rerankError = e instanceof Error ? e.message : String(e);
        this.logger.warn(`reranker failed, keeping the fused order: ${rerankError}`);
      }
    }
    return {
      passages: passages.slice(0, k),
      mode: effective,
      ...(degraded ? { degraded } : {}),
      reranked,
      ...(rerankError ? { rerankError } : {}),
    };
  }

  private async queryVector(
    request: RetrieveRequest,
  ): Promise<{ table: KnowledgeVectorTable | null; embedding: readonly number[] | null; degraded?: string }> {
    const unavailable = await this.vectors.unavailableReason();
    if (unavailable) return { table: null, embedding: null, degraded: unavailable };
    try {
      const table = await this.vectors.table();
      const embedding = request.queryEmbedding ?? (await this.embeddings.embed(request.query));
      if (table && embedding.length !== table.dimension) {
        throw new QueryEmbeddingMismatch(
          `The query embedding has ${embedding.length} dimensions; ${table.model} vectors have ${table.dimension}.`,
        );
      }
      this.lastEmbeddingsError = undefined;
      return { table, embedding };
    } catch (e) {
      if (!(e instanceof EmbeddingsUnavailable)) throw e;
      // Said once per reason, not at every search.
      if (this.lastEmbeddingsError !== e.message) {
        this.lastEmbeddingsError = e.message;
        this.logger.warn(`knowledge search is full-text only while embeddings fail: ${e.message}`);
      }
      return { table: null, embedding: null, degraded: `embeddings unavailable: ${e.message}` };
    }
  }

  private rank(mode: RetrievalMode, vectorHits: ChunkHit[], textHits: ChunkHit[]): RetrievedPassage[] {
    const toPassage = (h: ChunkHit, score: number): RetrievedPassage => ({
      chunkId: h.chunkId,
      documentId: h.documentId,
      documentName: h.documentName,
      knowledgeBaseId: h.knowledgeBaseId,
      version: h.version,
      headingPath: h.headingPath,
      start: h.start,
      end: h.end,
      text: h.text,
      score,
      ranks: {},
    });
    if (mode === 'vector') {
      return vectorHits.map((h, i) => ({
        ...toPassage(h, h.score),
        ranks: { vector: i + 1 },
        similarity: h.score,
      }));
    }
    if (mode === 'fullText') {
      return textHits.map((h, i) => ({ ...toPassage(h, h.score), ranks: { fullText: i + 1 } }));
    }
    const hits = new Map<string, ChunkHit>();
    for (const h of [...vectorHits, ...textHits]) if (!hits.has(h.chunkId)) hits.set(h.chunkId, h);
    const similarity = new Map(vectorHits.map((h) => [h.chunkId, h.score]));
    const fused = reciprocalRankFusion(
      [vectorHits.map((h) => h.chunkId), textHits.map((h) => h.chunkId)],
      this.config.KNOWLEDGE_RRF_K,
    );
    return fused.map((f) => ({
      ...toPassage(hits.get(f.id)!, f.score),
      ranks: {
        ...(f.ranks[0] !== undefined ? { vector: f.ranks[0] } : {}),
        ...(f.ranks[1] !== undefined ? { fullText: f.ranks[1] } : {}),
      },
      ...(similarity.has(f.id) ? { similarity: similarity.get(f.id) } : {}),
    }));
  }
}
