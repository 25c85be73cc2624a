import { randomUUID } from 'node:crypto';
import { EntityManager, type EntityManager as PgEntityManager } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import { vectorLiteral } from '../database/vector-store';
import type { DraftChunk } from './chunker';
import type { KnowledgeVectorTable } from './knowledge-vectors';
import type { ReingestionPlan, StoredChunk } from './reingestion';

const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;
const placeholders = (n: number): string => Array.from({ length: n }, () => '?').join(', ');

/**
 * A chunk found by a search, with what a citation needs. The source of the passage shape:
 * RetrievalService's `RetrievedPassage` extends it, and the agents' `Citation` is derived from that.
 */
export interface ChunkHit {
  chunkId: string;
  documentId: string;
  /** The document's name in its knowledge base (file name or relative path). */
  documentName: string;
  knowledgeBaseId: string;
  /** The document version served (all hits of one search come from one snapshot). */
  version: number;
  /** Headings above the passage, outermost first. */
  headingPath: string[];
  /** Offsets in the document's extracted text, characters; `end` exclusive. */
  start: number;
  end: number;
  /** The chunk's text. */
  text: string;
  /** Cosine similarity (vector search) or ts_rank_cd (full text). */
  score: number;
}

/** Where a search looks. */
export interface ChunkScope {
  tenantId: string;
  knowledgeBaseIds: readonly string[];
}

interface HitRow {
  chunk_id: string;
  document_id: string;
  document_name: string;
  knowledge_base_id: string;
  version: number | string;
  heading_path: string[] | string;
  start_offset: number | string;
  end_offset: number | string;
  text: string;
  score: number | string;
}

const HIT_COLUMNS = `c.id as chunk_id, c.document_id, d.name as document_name, c.knowledge_base_id, d.version,
  c.heading_path, c.start_offset, c.end_offset, c.text`;

function toHit(r: HitRow): ChunkHit {
  return {
    chunkId: r.chunk_id,
    documentId: r.document_id,
    documentName: r.document_name,
    knowledgeBaseId: r.knowledge_base_id,
    version: Number(r.version),
    headingPath:
      typeof r.heading_path === 'string' ? (JSON.parse(r.heading_path) as string[]) : r.heading_path,
    start: Number(r.start_offset),
    end: Number(r.end_offset),
    text: r.text,
    score: Number(r.score),
  };
}

/**
 * SQL over knowledge_chunks and the vector table: the diff's inputs, the atomic swap of a version,
 * and the two searches. Every statement filters by tenant.
 */
@Injectable()
export class KnowledgeChunkRepository {
  constructor(private readonly em: EntityManager) {}

  /**
   * The served chunks of a document, and whether `vectors` holds each one's embedding. Pass the
   * transaction's `em` inside a transaction: PGlite serves one session at a time, so a query on
   * another connection would wait for the transaction that waits for it.
   */
  async stored(
    tenantId: string,
    documentId: string,
    vectors: KnowledgeVectorTable | null,
    em: PgEntityManager = this.em.fork(),
  ): Promise<StoredChunk[]> {
    const join = vectors ? `left join ${quoteIdent(vectors.table)} v on v.chunk_id = c.id` : '';
    const rows = await em.execute<{ id: string; content_hash: string; has_embedding: boolean }[]>(
      `select c.id, c.content_hash, ${vectors ? 'v.chunk_id is not null' : 'false'} as has_embedding
       from knowledge_chunks c ${join}
       where c.tenant_id = ? and c.document_id = ?
       order by c.ordinal`,
      [tenantId, documentId],
    );
    return rows.map((r) => ({
      id: r.id,
      contentHash: r.content_hash,
      hasEmbedding: Boolean(r.has_embedding),
    }));
  }

  /**
   * Applies a reingestion plan inside the caller's transaction (`em` must be the transactional
   * EntityManager): deletes removed chunks (their vectors cascade), rewrites kept ones' positions,
   * inserts new ones, and stores vectors: embedded now (`embedded`, by content hash) or copied from
   * a stored twin (`plan.embeddingSources`).
   * @returns the number of chunks written
   */
  async apply(
    em: PgEntityManager,
    target: { tenantId: string; knowledgeBaseId: string; documentId: string; version: number },
    plan: ReingestionPlan,
    vectors: KnowledgeVectorTable | null,
    embedded: ReadonlyMap<string, readonly number[]>,
  ): Promise<number> {
    const { tenantId, knowledgeBaseId, documentId, version } = target;
    if (plan.remove.length > 0) {
      await em.execute(
        `delete from knowledge_chunks where tenant_id = ? and id in (${placeholders(plan.remove.length)})`,
        [tenantId, ...plan.remove],
        'run',
      );
    }
    for (const { id, draft } of plan.keep) {
      await em.execute(
        `update knowledge_chunks set ordinal = ?, heading_path = ?::jsonb, heading = ?, start_offset = ?,
           end_offset = ?, text = ?, token_count = ?, version = ?, updated_at = now()
         where tenant_id = ? and id = ?`,
        [
          draft.ordinal,
          JSON.stringify(draft.headingPath),
          draft.heading,
          draft.start,
          draft.end,
          draft.text,
          draft.tokenCount,
          version,
          tenantId,
          id,
        ],
        'run',
      );
    }
    const inserted: { id: string; draft: DraftChunk }[] = plan.insert.map((draft) => ({
      id: randomUUID(),
      draft,
    }));
    // Batches keep each statement under PostgreSQL's 65,535 bind parameters.
    for (let i = 0; i < inserted.length; i += 500) {
      const batch = inserted.slice(i, i + 500);
      await em.execute(
        `insert into knowledge_chunks (id, created_at, updated_at, tenant_id, knowledge_base_id, document_id,
           ordinal, heading_path, heading, start_offset, end_offset, text, token_count, content_hash, version)
         values ${batch.map(() => '(?, now(), now(), ?, ?, ?, ?, ?::jsonb, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
        batch.flatMap(({ id, draft }) => [
          id,
          tenantId,
          knowledgeBaseId,
          documentId,
          draft.ordinal,
          JSON.stringify(draft.headingPath),
          draft.heading,
          draft.start,
          draft.end,
          draft.text,
          draft.tokenCount,
          draft.contentHash,
          version,
        ]),
        'run',
      );
    }
    if (vectors) {
      const t = quoteIdent(vectors.table);
      const fresh: { id: string; vector: readonly number[] }[] = [];
      for (const { id, draft } of [...plan.keep, ...inserted]) {
        const vector = embedded.get(draft.contentHash);
        if (vector) {
          fresh.push({ id, vector });
          continue;
        }
        const source = plan.embeddingSources.get(draft.contentHash);
        if (source && source !== id) {
          await em.execute(
            `insert into ${t} (chunk_id, tenant_id, knowledge_base_id, embedding)
             select ?, tenant_id, knowledge_base_id, embedding from ${t} where chunk_id = ? and tenant_id = ?
             on conflict (chunk_id) do nothing`,
            [id, source, tenantId],
            'run',
          );
        }
      }
      for (let i = 0; i < fresh.length; i += 200) {
        const batch = fresh.slice(i, i + 200);
        await em.execute(
          `insert into ${t} (chunk_id, tenant_id, knowledge_base_id, embedding)
           values ${batch.map(() => '(?, ?, ?, ?::vector)').join(', ')}
           on conflict (chunk_id) do update set embedding = excluded.embedding`,
          batch.flatMap(({ id, vector }) => [id, tenantId, knowledgeBaseId, vectorLiteral(vector)]),
          'run',
        );
      }
    }
    return plan.keep.length + inserted.length;
  }

  /**
   * The `limit` chunks nearest to `embedding` by cosine distance (HNSW), best first; `em` is the
   * caller's (read-only, repeatable-read) transaction, so both searches see one snapshot.
   */
  async vectorSearch(
    em: PgEntityManager,
    scope: ChunkScope,
    vectors: KnowledgeVectorTable,
    embedding: readonly number[],
    limit: number,
  ): Promise<ChunkHit[]> {
    if (scope.knowledgeBaseIds.length === 0) return [];
    if (vectors.iterativeScan) {
      // Filtered HNSW scans stop at ef_search candidates; an iterative scan keeps going until enough rows pass.
      await em.execute(`set local hnsw.iterative_scan = 'relaxed_order'`, [], 'run');
    }
    const literal = vectorLiteral(embedding);
    const rows = await em.execute<HitRow[]>(
      `select ${HIT_COLUMNS}, 1 - (v.embedding <=> ?::vector) as score
       from ${quoteIdent(vectors.table)} v
       join knowledge_chunks c on c.id = v.chunk_id
       join knowledge_documents d on d.id = c.document_id
       where v.tenant_id = ? and v.knowledge_base_id in (${placeholders(scope.knowledgeBaseIds.length)})
       order by v.embedding <=> ?::vector
       limit ?`,
      [literal, scope.tenantId, ...scope.knowledgeBaseIds, literal, limit],
    );
    // relaxed_order may return rows slightly out of order; the ranking must be exact.
    return rows.map(toHit).sort((a, b) => b.score - a.score);
  }

  /**
   * The `limit` chunks best matching `query` by PostgreSQL full-text search, best first: the query's
   * words OR-ed together (a question rarely shares every word with its answer; websearch_to_tsquery
   * stems them, drops English stop words and never fails on punctuation), ranked by ts_rank_cd
   * (cover density; heading matches weigh more) normalised by 1 + log(chunk length).
   */
  async fullTextSearch(
    em: PgEntityManager,
    scope: ChunkScope,
    query: string,
    limit: number,
  ): Promise<ChunkHit[]> {
    if (scope.knowledgeBaseIds.length === 0) return [];
    const anyWord = orQuery(query);
    if (!anyWord) return [];
    const rows = await em.execute<HitRow[]>(
      `with q as (select websearch_to_tsquery('english', ?) as query)
       select ${HIT_COLUMNS}, ts_rank_cd(c.tsv, q.query, 1) as score
       from q, knowledge_chunks c
       join knowledge_documents d on d.id = c.document_id
       where c.tenant_id = ? and c.knowledge_base_id in (${placeholders(scope.knowledgeBaseIds.length)})
         and c.tsv @@ q.query
       order by score desc, c.id
       limit ?`,
      [anyWord, scope.tenantId, ...scope.knowledgeBaseIds, limit],
    );
    return rows.map(toHit);
  }
}

/**
 * A websearch_to_tsquery text matching any word of `query`: words joined by `or`, with the
 * characters that websearch syntax reads as operators (quotes, a leading `-`) removed.
 */
export function orQuery(query: string): string {
  return query
    .split(/\s+/)
    .map((w) => w.replace(/["\u201c\u201d]/g, '').replace(/^-+/, ''))
    .filter((w) => /[\p{L}\p{N}]/u.test(w) && w.toLowerCase() !== 'or')
    .join(' or ');
}
