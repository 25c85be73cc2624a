import { IsolationLevel } from '@mikro-orm/core';
import { EntityManager } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import type { UsageRow } from './usage.types';

/** How `GET /v1/usage` groups its rows. */
export type UsageGroup = 'day' | 'key' | 'model' | 'endpoint';

/** Filters of a usage report; every given field must match. `from` inclusive, `to` exclusive. */
export interface UsageFilter {
  from: Date;
  to: Date;
  tenantId?: string;
  keyId?: string;
  model?: string;
}

/** The summed counters of a group (tokens; USD). */
export interface UsageCounters {
  requests: number;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  cost: number;
  costAvoided: number;
}

/** One group of a report: its key (`2026-11-01`, a key id, a model or an endpoint) and counters. */
export type UsageGroupRow = UsageCounters & { group: string };

const DAY_MS = 86_400_000;
/** Placeholder for the rollup watermark among a report's parameters (read inside the report's snapshot). */
const WATERMARK = Symbol('watermark');

/** The columns of a write batch: the record's field, the table's column and its type. */
const RECORD_COLUMNS: readonly (readonly [keyof UsageRow, string, string])[] = [
  ['id', 'id', 'uuid'],
  ['occurredAt', 'occurred_at', 'timestamptz'],
  ['tenantId', 'tenant_id', 'uuid'],
  ['keyId', 'key_id', 'uuid'],
  ['requestId', 'request_id', 'text'],
  ['conversationId', 'conversation_id', 'uuid'],
  ['endpoint', 'endpoint', 'text'],
  ['model', 'model', 'text'],
  ['provider', 'provider', 'text'],
  ['deployment', 'deployment', 'text'],
  ['promptTokens', 'prompt_tokens', 'int'],
  ['cachedTokens', 'cached_tokens', 'int'],
  ['completionTokens', 'completion_tokens', 'int'],
  ['cacheLayer', 'cache_layer', 'text'],
  ['avoidedTokensExact', 'avoided_tokens_exact', 'int'],
  ['avoidedCostExact', 'avoided_cost_exact', 'numeric'],
  ['avoidedTokensSemantic', 'avoided_tokens_semantic', 'int'],
  ['avoidedCostSemantic', 'avoided_cost_semantic', 'numeric'],
  ['avoidedTokensPrefix', 'avoided_tokens_prefix', 'int'],
  ['avoidedCostPrefix', 'avoided_cost_prefix', 'numeric'],
  ['cost', 'cost', 'numeric'],
  ['costAvoided', 'cost_avoided', 'numeric'],
  ['latencyMs', 'latency_ms', 'int'],
  ['ttftMs', 'ttft_ms', 'int'],
];

/**
 * SQL of the usage ledger: batch inserts, the daily rollup and reports. Reads combine the rollup
 * (`usage_daily`, whole UTC days folded through `usage_rollup_state.rolled_through_seq`) with the
 * records it has not folded yet and the partial days at the range's edges, in one REPEATABLE READ
 * snapshot, so a report is exact whether or not the rollup has run.
 */
@Injectable()
export class UsageLedgerRepository {
  constructor(private readonly em: EntityManager) {}

  /**
   * Inserts a batch in one statement. Records already stored (same id: a retried job) are skipped.
   * @returns how many were new
   */
  async insertBatch(rows: readonly UsageRow[]): Promise<number> {
    if (rows.length === 0) return 0;
    // One array per column, unnested server-side: PostgreSQL parses typed arrays faster than a JSON
    // document, and knex binds them as parameters ($1..$24). (MikroORM's execute() would inline them.)
    const arrays = RECORD_COLUMNS.map(([field]) => rows.map((r) => r[field]));
    const result = await this.em
      .getConnection()
      .getKnex()
      .raw<{ rowCount: number }>(
        `insert into usage_records (${RECORD_COLUMNS.map(([, column]) => column).join(', ')})
         select * from unnest(${RECORD_COLUMNS.map(([, , type]) => `?::${type}[]`).join(', ')})
         on conflict (id) do nothing`,
        // The pg driver sends each JavaScript array as one PostgreSQL array parameter (nulls included).
        arrays as unknown as string[][],
      );
    return result.rowCount;
  }

  /**
   * Folds records stored since the last rollup into `usage_daily`, exactly once each. The watermark
   * is read under a brief EXCLUSIVE table lock, which waits for batch inserts in flight: every record
   * at or below it is then committed, and any later insert gets a higher `seq` (an insert holds its
   * lock from taking its `seq` to its commit). The fold itself runs without blocking writers.
   * @returns the day rows written and the new watermark
   */
  async rollup(): Promise<{ folded: number; throughSeq: string }> {
    const connection = this.em.getConnection();
    const watermark = await connection.transactional(async (trx) => {
      await connection.execute('lock table usage_records in exclusive mode', [], 'run', trx);
      const [row] = await connection.execute<{ through: string | null }[]>(
        'select max(seq)::text as through from usage_records',
        [],
        'all',
        trx,
      );
      return row?.through ?? '0';
    });
    const result = await connection.transactional(async (trx) => {
      const [state] = await connection.execute<{ from: string }[]>(
        'select rolled_through_seq::text as "from" from usage_rollup_state where id = 1 for update',
        [],
        'all',
        trx,
      );
      const from = state?.from ?? '0';
      if (BigInt(watermark) <= BigInt(from)) return { folded: 0, throughSeq: from };
      const folded = await connection.execute<{ affectedRows: number }>(
        `insert into usage_daily as d (day, tenant_id, key_id, model, endpoint, requests, prompt_tokens, cached_tokens,
           completion_tokens, avoided_tokens_exact, avoided_tokens_semantic, avoided_tokens_prefix, cost, cost_avoided,
           latency_ms_sum)
         select (occurred_at at time zone 'UTC')::date, tenant_id, key_id, model, endpoint, count(*), sum(prompt_tokens),
           sum(cached_tokens), sum(completion_tokens), sum(avoided_tokens_exact), sum(avoided_tokens_semantic),
           sum(avoided_tokens_prefix), sum(cost), sum(cost_avoided), sum(latency_ms)
         from usage_records where seq > ? and seq <= ?
         group by 1, 2, 3, 4, 5
         on conflict (day, tenant_id, key_id, model, endpoint) do update set
           requests = d.requests + excluded.requests,
           prompt_tokens = d.prompt_tokens + excluded.prompt_tokens,
           cached_tokens = d.cached_tokens + excluded.cached_tokens,
           completion_tokens = d.completion_tokens + excluded.completion_tokens,
           avoided_tokens_exact = d.avoided_tokens_exact + excluded.avoided_tokens_exact,
           avoided_tokens_semantic = d.avoided_tokens_semantic + excluded.avoided_tokens_semantic,
           avoided_tokens_prefix = d.avoided_tokens_prefix + excluded.avoided_tokens_prefix,
           cost = d.cost + excluded.cost,
           cost_avoided = d.cost_avoided + excluded.cost_avoided,
           latency_ms_sum = d.latency_ms_sum + excluded.latency_ms_sum`,
        [from, watermark],
        'run',
        trx,
      );
      await connection.execute(
        'update usage_rollup_state set rolled_through_seq = ?, rolled_at = now() where id = 1',
        [watermark],
        'run',
        trx,
      );
      return { folded: folded.affectedRows, throughSeq: watermark };
    });
    if (result.folded > 0) {
      // Reports bound the unrolled tail by `seq`; with statistics from before a burst of inserts the
      // planner scans the month's records instead of the tail (16 s instead of ms at 1M records,
      // bench:usage). Autovacuum's analyze can lag a burst by minutes; a sampled ANALYZE is cheap.
      await connection.execute('analyze usage_records, usage_daily', [], 'run');
    }
    return result;
  }

  /**
   * Sums the ledger over `filter`, grouped by `group`, with the totals (`group` null) as the last row.
   * Whole UTC days in the range come from the rollup plus the records it has not folded; partial days
   * at the edges come from the records.
   */
  async report(
    filter: UsageFilter,
    group: UsageGroup,
  ): Promise<{ rows: UsageGroupRow[]; totals: UsageCounters }> {
    const fullFrom = new Date(Math.ceil(filter.from.getTime() / DAY_MS) * DAY_MS);
    const fullTo = new Date(Math.floor(filter.to.getTime() / DAY_MS) * DAY_MS);
    const hasFullDays = fullFrom < fullTo;
    const where = (table: 'd' | 'r'): { sql: string; params: unknown[] } => {
      const parts: string[] = [];
      const params: unknown[] = [];
      if (filter.tenantId) {
        parts.push(`${table}.tenant_id = ?`);
        params.push(filter.tenantId);
      }
      if (filter.keyId) {
        parts.push(`${table}.key_id = ?`);
        params.push(filter.keyId);
      }
      if (filter.model) {
        parts.push(`${table}.model = ?`);
        params.push(filter.model);
      }
      return { sql: parts.map((p) => ` and ${p}`).join(''), params };
    };
    const column = { day: 'day', key: 'key_id', model: 'model', endpoint: 'endpoint' }[group];
    const rowsOfRecords = `(r.occurred_at at time zone 'UTC')::date as day, r.key_id, r.model, r.endpoint, 1 as requests,
      r.prompt_tokens, r.cached_tokens, r.completion_tokens, r.cost, r.cost_avoided`;
    const parts: string[] = [];
    const params: unknown[] = [];
    if (hasFullDays) {
      const d = where('d');
      parts.push(`select d.day, d.key_id, d.model, d.endpoint, d.requests, d.prompt_tokens, d.cached_tokens,
          d.completion_tokens, d.cost, d.cost_avoided
        from usage_daily d where d.day >= ?::date and d.day < ?::date${d.sql}`);
      params.push(isoDay(fullFrom), isoDay(fullTo), ...d.params);
      const r = where('r');
      // The watermark as a value (not a subquery) lets the planner read just the tail through the seq index.
      parts.push(`select ${rowsOfRecords} from usage_records r
        where r.seq > ?::bigint and r.occurred_at >= ? and r.occurred_at < ?${r.sql}`);
      params.push(WATERMARK, fullFrom, fullTo, ...r.params);
      const edges: [Date, Date][] = [
        [filter.from, fullFrom],
        [fullTo, filter.to],
      ];
      for (const [a, b] of edges) {
        if (a >= b) continue;
        const e = where('r');
        parts.push(
          `select ${rowsOfRecords} from usage_records r where r.occurred_at >= ? and r.occurred_at < ?${e.sql}`,
        );
        params.push(a, b, ...e.params);
      }
    } else {
      const r = where('r');
      parts.push(
        `select ${rowsOfRecords} from usage_records r where r.occurred_at >= ? and r.occurred_at < ?${r.sql}`,
      );
      params.push(filter.from, filter.to, ...r.params);
    }
    const sql = `select ${group === 'day' ? `to_char(${column}, 'YYYY-MM-DD')` : `${column}::text`} as "group",
        grouping(${column}) as is_total,
        sum(requests)::bigint as requests, sum(prompt_tokens)::bigint as prompt_tokens,
        sum(cached_tokens)::bigint as cached_tokens, sum(completion_tokens)::bigint as completion_tokens,
        coalesce(sum(cost), 0) as cost, coalesce(sum(cost_avoided), 0) as cost_avoided
      from (${parts.join('\n union all \n')}) u
      group by grouping sets ((${column}), ())
      order by is_total, 1`;
    type Raw = {
      group: string | null;
      is_total: number;
      requests: string | null;
      prompt_tokens: string | null;
      cached_tokens: string | null;
      completion_tokens: string | null;
      cost: string;
      cost_avoided: string;
    };
    // The watermark and the sums read one snapshot (REPEATABLE READ): a rollup committing in between
    // can neither drop records from the report nor count them twice.
    const connection = this.em.getConnection();
    const raw = await connection.transactional(
      async (trx) => {
        const [state] = await connection.execute<{ through: string }[]>(
          'select rolled_through_seq::text as through from usage_rollup_state where id = 1',
          [],
          'all',
          trx,
        );
        const bound = params.map((p) => (p === WATERMARK ? (state?.through ?? '0') : p));
        return connection.execute<Raw[]>(sql, bound, 'all', trx);
      },
      { isolationLevel: IsolationLevel.REPEATABLE_READ, readOnly: true },
    );
    const counters = (r: Raw): UsageCounters => ({
      requests: Number(r.requests ?? 0),
      promptTokens: Number(r.prompt_tokens ?? 0),
      cachedTokens: Number(r.cached_tokens ?? 0),
      completionTokens: Number(r.completion_tokens ?? 0),
      cost: Number(r.cost),
      costAvoided: Number(r.cost_avoided),
    });
    const total = raw.find((r) => Number(r.is_total) === 1);
    return {
      rows: raw
        .filter((r) => Number(r.is_total) === 0)
        .map((r) => ({ group: r.group ?? '', ...counters(r) })),
      totals: total
        ? counters(total)
        : { requests: 0, promptTokens: 0, cachedTokens: 0, completionTokens: 0, cost: 0, costAvoided: 0 },
    };
  }

  /**
   * What the cache layers saved, summed over the whole ledger of a tenant (or every tenant): the rollup plus the records it has not folded, in one snapshot (exact).
   * Tokens are tokens, cost and costAvoided USD.
   */
  async savings(filter: { tenantId?: string }): Promise<LedgerSavings> {
    type Raw = Record<
      'requests' | 'prompt' | 'cached' | 'completion' | 'exact' | 'semantic' | 'prefix' | 'cost' | 'avoided',
      string | null
    >;
    const sums = `coalesce(sum(requests), 0)::text as requests, coalesce(sum(prompt_tokens), 0)::text as prompt,
      coalesce(sum(cached_tokens), 0)::text as cached, coalesce(sum(completion_tokens), 0)::text as completion,
      coalesce(sum(avoided_tokens_exact), 0)::text as exact, coalesce(sum(avoided_tokens_semantic), 0)::text as semantic,
      coalesce(sum(avoided_tokens_prefix), 0)::text as prefix, coalesce(sum(cost), 0)::text as cost,
      coalesce(sum(cost_avoided), 0)::text as avoided`;
    const columns = `1 as requests, prompt_tokens, cached_tokens, completion_tokens, avoided_tokens_exact,
      avoided_tokens_semantic, avoided_tokens_prefix, cost, cost_avoided`;
    const connection = this.em.getConnection();
    const raw = await connection.transactional(
      async (trx) => {
        const [state] = await connection.execute<{ through: string }[]>(
          'select rolled_through_seq::text as through from usage_rollup_state where id = 1',
          [],
          'all',
          trx,
        );
        const tenant = filter.tenantId ? ' and tenant_id = ?' : '';
        const t = filter.tenantId ? [filter.tenantId] : [];
        return connection.execute<Raw[]>(
          `select ${sums} from (
             select requests, prompt_tokens, cached_tokens, completion_tokens, avoided_tokens_exact,
               avoided_tokens_semantic, avoided_tokens_prefix, cost, cost_avoided
             from usage_daily where true${tenant}
             union all
             select ${columns} from usage_records where seq > ?::bigint${tenant}) u`,
          [...t, state?.through ?? '0', ...t],
          'all',
          trx,
        );
      },
      { isolationLevel: IsolationLevel.REPEATABLE_READ, readOnly: true },
    );
    const r = raw[0];
    const n = (v: string | null): number => Number(v ?? 0);
    return {
      requests: n(r.requests),
      promptTokens: n(r.prompt),
      cachedTokens: n(r.cached),
      completionTokens: n(r.completion),
      avoidedTokens: { exact: n(r.exact), semantic: n(r.semantic), enginePrefix: n(r.prefix) },
      cost: n(r.cost),
      costAvoided: n(r.avoided),
    };
  }
}

/** The cache layers' savings over a ledger: counters plus the tokens each layer avoided (USD for costs). */
export interface LedgerSavings extends UsageCounters {
  /** Tokens avoided: replayed response-cache hits (as the misses they replaced) and cached prompt tokens. */
  avoidedTokens: { exact: number; semantic: number; enginePrefix: number };
}

function isoDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}
