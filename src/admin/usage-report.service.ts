import { EntityManager } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import { stringify } from 'csv-stringify/sync';
import { ApiKey } from '../auth/api-key.entity';
import type { AuthContext } from '../auth/api-key.service';
import { TenantService } from '../auth/tenant.service';
import { InvalidRequest } from '../common/domain-error';
import { UsageLedgerRepository } from '../usage/usage-ledger.repository';
import { NO_KEY } from '../usage/usage.types';
import { scopeOf } from './admin-keys.service';
import type { UsageQueryDto, UsageReportDto, UsageRowDto } from './dto/usage.dto';

const COUNTERS = [
  'requests',
  'promptTokens',
  'cachedTokens',
  'completionTokens',
  'cost',
  'costAvoided',
] as const;

/**
 * `GET /v1/usage`: the ledger summed by day, key, model or endpoint. A key with `usage:read` sees its
 * own tenant; the platform admin every tenant (or the one it names).
 */
@Injectable()
export class UsageReportService {
  constructor(
    private readonly ledger: UsageLedgerRepository,
    private readonly tenants: TenantService,
    private readonly em: EntityManager,
  ) {}

  /** @throws InvalidRequest for `from` ≥ `to`; TenantNotFound for a tenant the caller may not see */
  async report(auth: AuthContext, query: UsageQueryDto): Promise<UsageReportDto> {
    const now = new Date();
    const to = query.to ? new Date(query.to) : now;
    const from = query.from
      ? new Date(query.from)
      : new Date(Date.UTC(to.getUTCFullYear(), to.getUTCMonth(), 1));
    if (!(from < to)) throw new InvalidRequest('from must be before to.');
    const group = query.group ?? 'day';
    const tenantId = query.tenant
      ? (await this.tenants.resolve(query.tenant, scopeOf(auth))).id
      : scopeOf(auth);
    const result = await this.ledger.report(
      { from, to, tenantId, keyId: query.key, model: query.model },
      group,
    );
    const names =
      group === 'key'
        ? new Map(
            (
              await this.em
                .fork()
                .find(
                  ApiKey,
                  { id: { $in: result.rows.map((r) => r.group).filter((id) => id !== NO_KEY) } },
                  { fields: ['id', 'name'] },
                )
            ).map((k) => [k.id, k.name]),
          )
        : new Map<string, string | null>();
    const data = result.rows.map(({ group: value, ...counters }): UsageRowDto => {
      switch (group) {
        case 'day':
          return { day: value, ...counters };
        case 'key':
          return value === NO_KEY
            ? { keyId: null, keyName: null, ...counters }
            : { keyId: value, keyName: names.get(value) ?? null, ...counters };
        case 'model':
          return { model: value, ...counters };
        case 'endpoint':
          return { endpoint: value, ...counters };
      }
    });
    return { from: from.toISOString(), to: to.toISOString(), group, data, totals: result.totals };
  }

  /** The report's rows as CSV (RFC 4180, a header line; totals are the column sums and are not repeated). */
  toCsv(report: UsageReportDto): string {
    const groupColumns =
      report.group === 'key' ? ['keyId', 'keyName'] : [report.group === 'day' ? 'day' : report.group];
    const columns = [...groupColumns, ...COUNTERS];
    return stringify(
      report.data.map((row) => columns.map((c) => (row as unknown as Record<string, unknown>)[c] ?? '')),
      { header: true, columns },
    );
  }
}
