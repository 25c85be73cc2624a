import { createHash } from 'node:crypto';
import { EntityManager } from '@mikro-orm/postgresql';
import { Injectable, Logger } from '@nestjs/common';

/** Whether the database can store vectors (the pgvector extension). */
export interface VectorSupport {
  available: boolean;
  /** pgvector version, e.g. `0.8.7`. */
  version?: string;
  /** Why vectors are unavailable (for the boot log). */
  reason?: string;
}

/** One collection: vectors of one embedding model and dimension, for one use (`response_cache`). */
export interface VectorCollectionSpec {
  /** Use of the collection, lowercase letters, digits and `_` (e.g. `response_cache`). */
  name: string;
  /** Embedding model that made the vectors (vectors of different models are never compared). */
  model: string;
  dimension: number;
}

/** A vector with what it is filtered by. */
export interface VectorRecord {
  id: string;
  tenantId: string;
  /** Filter key inside a tenant (the response cache puts its scope fingerprint here). */
  namespace: string;
  /** Attributes to invalidate by (agent, template version); strings only. */
  attributes: Record<string, string>;
  embedding: readonly number[];
  /** After this instant the vector is not returned (and is purged). */
  expiresAt?: Date;
}

/** A nearest neighbour. */
export interface VectorMatch {
  id: string;
  /** Cosine similarity (1 - cosine distance), -1..1. */
  similarity: number;
  attributes: Record<string, string>;
}

/** What to delete; every given field must match. At least one field is required. */
export interface VectorDeleteFilter {
  tenantId?: string;
  ids?: readonly string[];
  namespace?: string;
  attributes?: Record<string, string>;
}

const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;
/** pgvector's text form; 8 significant digits are all a float4 (pgvector's element type) keeps anyway. */
export const vectorLiteral = (v: readonly number[]): string =>
  `[${v.map((x) => (Number.isFinite(x) ? Number(x.toPrecision(8)) : 0)).join(',')}]`;

/**
 * The name of a collection's table: `vec_<name>_<model slug>_<hash>_<dimension>`, at most 63 characters
 * (PostgreSQL's identifier limit), stable for a model and dimension.
 */
export function vectorTableName(spec: VectorCollectionSpec): string {
  const slug = spec.model
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 20);
  const hash = createHash('sha256').update(spec.model).digest('hex').slice(0, 8);
  return `vec_${spec.name}_${slug}_${hash}_${spec.dimension}`.slice(0, 63);
}

/**
 * Vectors in PostgreSQL with pgvector, through MikroORM's connection: one table per collection
 * (use x embedding model x dimension), an HNSW index with cosine distance, and a b-tree on
 * (tenant, namespace) so that searches are filtered by tenant and scope. Tables are created at
 * runtime, when the collection is first used, because their dimension is known only then.
 *
 * Works on the embedded PGlite (pgvector bundled) and on any PostgreSQL with the extension; on a
 * server without it, `support()` says so and nothing here may be called.
 */
@Injectable()
export class PgVectorStore {
  private readonly logger = new Logger(PgVectorStore.name);
  private supportCheck?: Promise<VectorSupport>;
  private readonly collections = new Map<string, Promise<VectorCollection>>();

  constructor(private readonly em: EntityManager) {}

  /** Checks once whether pgvector is installed, installing it (`CREATE EXTENSION`) when it is available. */
  support(): Promise<VectorSupport> {
    this.supportCheck ??= this.checkSupport();
    return this.supportCheck;
  }

  private async checkSupport(): Promise<VectorSupport> {
    const connection = this.em.getConnection();
    try {
      const installed = await connection.execute<{ extversion: string }[]>(
        `select extversion from pg_extension where extname = 'vector'`,
      );
      if (installed.length > 0) return { available: true, version: installed[0].extversion };
      const available = await connection.execute<{ name: string }[]>(
        `select name from pg_available_extensions where name = 'vector'`,
      );
      if (available.length === 0) {
        return {
          available: false,
          reason: 'the pgvector extension is not installed on this PostgreSQL server',
        };
      }
      await connection.execute('create extension if not exists vector');
      const [row] = await connection.execute<{ extversion: string }[]>(
        `select extversion from pg_extension where extname = 'vector'`,
      );
      return { available: true, version: row?.extversion };
    } catch (e) {
      return {
        available: false,
        reason: `pgvector cannot be enabled: ${e instanceof Error ? e.message : String(e)}`,
      };
    }
  }

  /**
   * The collection for `spec`, its table and indexes created if missing.
   * @throws Error when pgvector is unavailable
   */
  collection(spec: VectorCollectionSpec): Promise<VectorCollection> {
    if (!/^[a-z][a-z0-9_]{0,30}$/.test(spec.name))
      throw new RangeError(`invalid collection name ${spec.name}`);
    if (!Number.isInteger(spec.dimension) || spec.dimension < 1 || spec.dimension > 16_000) {
      throw new RangeError(`invalid vector dimension ${spec.dimension}`);
    }
    const table = vectorTableName(spec);
    let collection = this.collections.get(table);
    if (!collection) {
      collection = this.createCollection(spec, table).catch((e: unknown) => {
        this.collections.delete(table);
        throw e;
      });
      this.collections.set(table, collection);
    }
    return collection;
  }

  /** Tables of every collection named `name` (all models and dimensions), for invalidation. */
  async tablesOf(name: string): Promise<string[]> {
    const rows = await this.em
      .getConnection()
      .execute<
        { table_name: string }[]
      >(`select table_name from information_schema.tables where table_schema = current_schema() and table_name like ?`, [`vec\\_${name}\\_%`]);
    return rows.map((r) => r.table_name);
  }

  /** Deletes matching vectors from every collection named `name`; returns how many were deleted. */
  async deleteEverywhere(name: string, filter: VectorDeleteFilter): Promise<number> {
    let deleted = 0;
    for (const table of await this.tablesOf(name)) deleted += await deleteFrom(this.em, table, filter);
    return deleted;
  }

  private async createCollection(spec: VectorCollectionSpec, table: string): Promise<VectorCollection> {
    const support = await this.support();
    if (!support.available) throw new Error(`vector collections are unavailable: ${support.reason}`);
    const t = quoteIdent(table);
    const connection = this.em.getConnection();
    await connection.transactional(async (trx) => {
      // Several replicas may create the same table at once; CREATE ... IF NOT EXISTS alone can still collide.
      await connection.execute('select pg_advisory_xact_lock(hashtext(?))', [table], 'all', trx);
      await connection.execute(
        `create table if not exists ${t} (
           id uuid primary key,
           tenant_id uuid not null references tenants (id) on delete cascade,
           namespace varchar(128) not null,
           attributes jsonb not null default '{}'::jsonb,
           created_at timestamptz not null default now(),
           expires_at timestamptz null,
           embedding vector(${spec.dimension}) not null
         )`,
        [],
        'run',
        trx,
      );
      await connection.execute(
        `create index if not exists ${quoteIdent(`${table.slice(0, 55)}_scope`)} on ${t} (tenant_id, namespace)`,
        [],
        'run',
        trx,
      );
      // HNSW indexes vectors up to 2,000 dimensions (pgvector's limit for the `vector` type); above it, exact scans.
      if (spec.dimension <= 2000) {
        await connection.execute(
          `create index if not exists ${quoteIdent(`${table.slice(0, 56)}_hnsw`)} on ${t} using hnsw (embedding vector_cosine_ops)`,
          [],
          'run',
          trx,
        );
      }
    });
    this.logger.log(
      `vector collection ${table} ready (${spec.model}, ${spec.dimension} dimensions, pgvector ${support.version})`,
    );
    return new VectorCollection(this.em, table, spec, iterativeScanSupported(support.version));
  }
}

/** pgvector 0.8.0 added iterative index scans, which keep filtered HNSW searches from coming back short. */
export function iterativeScanSupported(version: string | undefined): boolean {
  const [major, minor] = (version ?? '0.0').split('.').map(Number);
  return major > 0 || minor >= 8;
}

async function deleteFrom(em: EntityManager, table: string, filter: VectorDeleteFilter): Promise<number> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.tenantId) {
    where.push('tenant_id = ?');
    params.push(filter.tenantId);
  }
  if (filter.ids) {
    if (filter.ids.length === 0) return 0;
    where.push(`id in (${filter.ids.map(() => '?').join(',')})`);
    params.push(...filter.ids);
  }
  if (filter.namespace) {
    where.push('namespace = ?');
    params.push(filter.namespace);
  }
  if (filter.attributes && Object.keys(filter.attributes).length > 0) {
    where.push('attributes @> ?::jsonb');
    params.push(JSON.stringify(filter.attributes));
  }
  if (where.length === 0) throw new RangeError('a vector delete needs a filter');
  const result = await em.getConnection().execute<{
    affectedRows: number;
  }>(`delete from ${quoteIdent(table)} where ${where.join(' and ')}`, params, 'run');
  return result.affectedRows;
}

/** The vectors of one model and dimension. Every query filters by tenant. */
export class VectorCollection {
  constructor(
    private readonly em: EntityManager,
    readonly table: string,
    readonly spec: VectorCollectionSpec,
    /** Whether the server's pgvector (>= 0.8) honours the sessions' `hnsw.iterative_scan`. */
    readonly iterativeScan: boolean,
  ) {}

  /** Inserts or replaces vectors by id. */
  async upsert(records: readonly VectorRecord[]): Promise<void> {
    if (records.length === 0) return;
    const params: unknown[] = [];
    const rows = records.map((r) => {
      if (r.embedding.length !== this.spec.dimension) {
        throw new RangeError(
          `vector of ${r.embedding.length} dimensions in a ${this.spec.dimension}-dimension collection`,
        );
      }
      params.push(
        r.id,
        r.tenantId,
        r.namespace,
        JSON.stringify(r.attributes),
        r.expiresAt ?? null,
        vectorLiteral(r.embedding),
      );
      return '(?, ?, ?, ?::jsonb, ?, ?::vector)';
    });
    await this.em.getConnection().execute(
      `insert into ${quoteIdent(this.table)} (id, tenant_id, namespace, attributes, expires_at, embedding)
       values ${rows.join(', ')}
       on conflict (id) do update set namespace = excluded.namespace, attributes = excluded.attributes,
         expires_at = excluded.expires_at, embedding = excluded.embedding`,
      params,
      'run',
    );
  }

  /**
   * The `k` nearest vectors of `tenantId`'s `namespace` by cosine distance, at least `minSimilarity`
   * similar, most similar first. Expired vectors are skipped.
   */
  async search(
    tenantId: string,
    namespace: string,
    embedding: readonly number[],
    k: number,
    minSimilarity = -1,
  ): Promise<VectorMatch[]> {
    const literal = vectorLiteral(embedding);
    const connection = this.em.getConnection();
    const sql = `select id, attributes, 1 - (embedding <=> ?::vector) as similarity
                 from ${quoteIdent(this.table)}
                 where tenant_id = ? and namespace = ? and (expires_at is null or expires_at > now())
                 order by embedding <=> ?::vector
                 limit ?`;
    const params = [literal, tenantId, namespace, literal, k];
    type Row = { id: string; attributes: Record<string, string> | string; similarity: number | string };
    // Filtered HNSW scans stop at ef_search candidates; every pooled session scans iteratively (pgvector
    // >= 0.8) until k rows pass the filter: see iterativeVectorScans in mikro-orm.options.ts.
    const rows = await connection.execute<Row[]>(sql, params, 'all');
    return rows
      .map((r) => ({
        id: r.id,
        similarity: Number(r.similarity),
        attributes:
          typeof r.attributes === 'string'
            ? (JSON.parse(r.attributes) as Record<string, string>)
            : r.attributes,
      }))
      .filter((m) => m.similarity >= minSimilarity)
      .sort((a, b) => b.similarity - a.similarity);
  }

  /** Deletes matching vectors of this collection. @returns how many */
  delete(filter: VectorDeleteFilter): Promise<number> {
    return deleteFrom(this.em, this.table, filter);
  }

  /** Deletes expired vectors. @returns how many */
  async purgeExpired(): Promise<number> {
    const result = await this.em.getConnection().execute<{
      affectedRows: number;
    }>(`delete from ${quoteIdent(this.table)} where expires_at is not null and expires_at <= now()`, [], 'run');
    return result.affectedRows;
  }
}
