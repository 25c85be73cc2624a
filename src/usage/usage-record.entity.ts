import { Entity, Index, PrimaryKey, Property } from '@mikro-orm/core';

/**
 * One billable request in the usage ledger (append-only; written in batches by the `usage` queue's
 * writer, never updated, so it has no `updatedAt`). Token counts are tokens; costs are USD from the
 * price lookup at the time of the request; times are ms. See docs/usage.md for how billing reads it.
 */
@Entity({ tableName: 'usage_records' })
@Index({ properties: ['tenantId', 'occurredAt'] })
export class UsageRecord {
  /** Made when the request is recorded, so a retried batch inserts each record once. */
  @PrimaryKey({ type: 'uuid' })
  id!: string;

  /** Ingestion order: the daily rollup folds records up to a sequence number. */
  @Property({ type: 'bigint', columnType: 'bigint', autoincrement: true, generated: 'identity' })
  @Index()
  seq!: string;

  /** When the request finished. */
  @Property({ type: 'datetime', length: 3 })
  occurredAt!: Date;

  /** When the writer stored the record. */
  @Property({ type: 'datetime', length: 3, defaultRaw: 'now()' })
  insertedAt!: Date;

  @Property({ type: 'uuid' })
  tenantId!: string;

  /** The API key; the nil UUID for work no key asked for (e.g. a scheduled re-ingestion). */
  @Property({ type: 'uuid' })
  keyId!: string;

  @Property({ type: 'string', length: 128 })
  requestId!: string;

  @Property({ type: 'uuid', nullable: true })
  conversationId!: string | null;

  /** `turn`, `chat.completions`, `embeddings`, `ingestion`. */
  @Property({ type: 'string', length: 32 })
  endpoint!: string;

  @Property({ type: 'string', length: 200 })
  model!: string;

  /** `vllm`, `openai`, `anthropic`, `cache` (a response-cache hit), ... */
  @Property({ type: 'string', length: 64, nullable: true })
  provider!: string | null;

  /** The deployment or replica that answered. */
  @Property({ type: 'string', length: 200, nullable: true })
  deployment!: string | null;

  @Property({ type: 'integer' }) promptTokens!: number;
  /** Prompt tokens the engine (prefix cache) or provider (prompt caching) reported cached. */
  @Property({ type: 'integer' }) cachedTokens!: number;
  @Property({ type: 'integer' }) completionTokens!: number;

  /** Which layer answered: `exact`, `semantic` (response cache), `engine-prefix`, `none`. */
  @Property({ type: 'string', length: 16 })
  cacheLayer!: string;

  /** Tokens an exact response-cache hit avoided (the replaced miss's prompt + completion). */
  @Property({ type: 'integer' }) avoidedTokensExact!: number;
  @Property({ type: 'decimal', precision: 20, scale: 9 }) avoidedCostExact!: string;
  /** Tokens a semantic response-cache hit avoided. */
  @Property({ type: 'integer' }) avoidedTokensSemantic!: number;
  @Property({ type: 'decimal', precision: 20, scale: 9 }) avoidedCostSemantic!: string;
  /** Prompt tokens the engine or provider did not recompute (its cached tokens). */
  @Property({ type: 'integer' }) avoidedTokensPrefix!: number;
  @Property({ type: 'decimal', precision: 20, scale: 9 }) avoidedCostPrefix!: string;

  /** What the request cost, USD. */
  @Property({ type: 'decimal', precision: 20, scale: 9 }) cost!: string;
  /** What the cache layers saved, USD (the three avoided costs). */
  @Property({ type: 'decimal', precision: 20, scale: 9 }) costAvoided!: string;

  /** Whole request, ms. */
  @Property({ type: 'integer' }) latencyMs!: number;
  /** Time to first token, ms; null when nothing streamed (embeddings). */
  @Property({ type: 'integer', nullable: true }) ttftMs!: number | null;
}
