import { Entity, Index, PrimaryKey, Property } from '@mikro-orm/core';

/**
 * The daily rollup of the ledger: sums per UTC day, tenant, key, model and endpoint, folded in by the
 * `usage` queue's repeatable rollup job, so reports over months read thousands of rows, not millions.
 */
@Entity({ tableName: 'usage_daily' })
@Index({ properties: ['tenantId', 'day'] })
export class UsageDaily {
  @PrimaryKey({ type: 'date' }) day!: string;
  @PrimaryKey({ type: 'uuid' }) tenantId!: string;
  @PrimaryKey({ type: 'uuid' }) keyId!: string;
  @PrimaryKey({ type: 'string', length: 200 }) model!: string;
  @PrimaryKey({ type: 'string', length: 32 }) endpoint!: string;

  @Property({ type: 'bigint' }) requests!: string;
  @Property({ type: 'bigint' }) promptTokens!: string;
  @Property({ type: 'bigint' }) cachedTokens!: string;
  @Property({ type: 'bigint' }) completionTokens!: string;
  @Property({ type: 'bigint' }) avoidedTokensExact!: string;
  @Property({ type: 'bigint' }) avoidedTokensSemantic!: string;
  @Property({ type: 'bigint' }) avoidedTokensPrefix!: string;
  @Property({ type: 'decimal', precision: 24, scale: 9 }) cost!: string;
  @Property({ type: 'decimal', precision: 24, scale: 9 }) costAvoided!: string;
  /** Sum of request latencies, ms (mean = latencyMsSum / requests). */
  @Property({ type: 'bigint' }) latencyMsSum!: string;
}

/** How far the rollup has folded the ledger: every record with `seq` ≤ `rolledThroughSeq` is in `usage_daily`. */
@Entity({ tableName: 'usage_rollup_state' })
export class UsageRollupState {
  @PrimaryKey({ type: 'smallint', autoincrement: false }) id!: number;
  @Property({ type: 'bigint' }) rolledThroughSeq!: string;
  @Property({ type: 'datetime', length: 3 }) rolledAt!: Date;
}
