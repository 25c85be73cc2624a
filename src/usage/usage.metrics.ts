import { Injectable } from '@nestjs/common';
import { Counter } from 'prom-client';
import { MetricsConfig } from '../config/metrics.config';
import { BoundedLabel } from '../observability/metric-labels';
import { MetricsService } from '../observability/metrics.service';
import type { UsageRow } from './usage.types';

/**
 * Prometheus counters of the ledger, counted when a record is made (so they are per api replica and
 * need no database): tokens and spend by model, savings by cache layer, records by endpoint. The
 * `tenant` label (ids) is added only with METRICS_TENANT_LABEL; models and tenants are bounded.
 */
@Injectable()
export class UsageMetrics {
  private readonly models = new BoundedLabel(64);
  private readonly tenants = new BoundedLabel(1000);
  private readonly tenantLabel: boolean;
  private readonly tokens: Counter<'model' | 'type' | 'tenant'>;
  private readonly spend: Counter<'model' | 'tenant'>;
  private readonly avoided: Counter<'model' | 'layer'>;
  private readonly records: Counter<'endpoint' | 'cache_layer'>;
  private readonly droppedRecords: Counter;
  private readonly writtenRecords: Counter;
  private writtenInProcess = 0;

  constructor(metrics: MetricsService, config: MetricsConfig) {
    this.tenantLabel = config.METRICS_TENANT_LABEL;
    const tenant = this.tenantLabel ? (['tenant'] as const) : ([] as const);
    const registers = [metrics.registry];
    this.tokens = new Counter({
      name: 'kvchat_usage_tokens_total',
      help: 'Tokens recorded in the usage ledger by model and type (prompt, cached, completion).',
      labelNames: ['model', 'type', ...tenant],
      registers,
    });
    this.spend = new Counter({
      name: 'kvchat_usage_cost_usd_total',
      help: 'Spend recorded in the usage ledger by model, USD (prices from the price lookup).',
      labelNames: ['model', ...tenant],
      registers,
    });
    this.avoided = new Counter({
      name: 'kvchat_usage_cost_avoided_usd_total',
      help: 'Cost the cache layers avoided by model and layer (exact, semantic, engine-prefix), USD.',
      labelNames: ['model', 'layer'],
      registers,
    });
    this.records = new Counter({
      name: 'kvchat_usage_records_total',
      help: 'Usage records made, by endpoint and the cache layer that answered.',
      labelNames: ['endpoint', 'cache_layer'],
      registers,
    });
    this.droppedRecords = new Counter({
      name: 'kvchat_usage_records_dropped_total',
      help: 'Usage records dropped because Redis could not take them before the buffer filled or shutdown ended.',
      registers,
    });
    this.writtenRecords = new Counter({
      name: 'kvchat_usage_records_written_total',
      help: 'Usage records this process inserted into the ledger (its writer jobs; a retried batch counts what it inserted).',
      registers,
    });
  }

  count(row: UsageRow): void {
    const model = this.models.value(row.model);
    const extra = this.tenantLabel ? { tenant: this.tenants.value(row.tenantId) } : {};
    this.tokens.inc({ model, type: 'prompt', ...extra }, row.promptTokens);
    this.tokens.inc({ model, type: 'cached', ...extra }, row.cachedTokens);
    this.tokens.inc({ model, type: 'completion', ...extra }, row.completionTokens);
    this.spend.inc({ model, ...extra }, row.cost);
    if (row.avoidedCostExact > 0) this.avoided.inc({ model, layer: 'exact' }, row.avoidedCostExact);
    if (row.avoidedCostSemantic > 0) this.avoided.inc({ model, layer: 'semantic' }, row.avoidedCostSemantic);
    if (row.avoidedCostPrefix > 0) this.avoided.inc({ model, layer: 'engine-prefix' }, row.avoidedCostPrefix);
    this.records.inc({ endpoint: row.endpoint, cache_layer: row.cacheLayer });
  }

  dropped(n: number): void {
    this.droppedRecords.inc(n);
  }

  /** The writer stored `n` new records. */
  written(n: number): void {
    this.writtenRecords.inc(n);
    this.writtenInProcess += n;
  }

  /** Records this process's writer has stored since it started (what the benchmark polls instead of count(*)). */
  get writtenTotal(): number {
    return this.writtenInProcess;
  }
}
