import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  checkDashboardMetrics,
  exportedMetricNames,
  metricNamesInPromql,
  metricNamesInVariableQuery,
} from './promql-names';

describe('metricNamesInPromql', () => {
  it('should find the metric inside histogram_quantile, ignoring functions, grouping labels and ranges', () => {
    const sut = metricNamesInPromql(
      'histogram_quantile(0.95, sum by (le, replica) (rate(kvchat_ttft_seconds_bucket{replica=~"$replica"}[$__rate_interval])))',
    );
    expect(sut).toEqual(['kvchat_ttft_seconds_bucket']);
  });

  it('should find both sides of a ratio and skip keywords, label values and numbers', () => {
    const sut = metricNamesInPromql(
      'sum(rate(kvchat_cached_tokens_total{code="by"}[5m])) / ignoring(result) group_left sum(rate(kvchat_prompt_tokens_total[5m])) * 1e3 > bool 0.5',
    );
    expect(sut.sort()).toEqual(['kvchat_cached_tokens_total', 'kvchat_prompt_tokens_total']);
  });

  it('should read a bare metric with a matcher', () => {
    expect(metricNamesInPromql('kvchat_replica_in_flight{replica="a"}')).toEqual([
      'kvchat_replica_in_flight',
    ]);
  });
});

describe('metricNamesInVariableQuery', () => {
  it('should read the metric of label_values(metric, label) and none of label_values(label)', () => {
    expect(metricNamesInVariableQuery('label_values(kvchat_replica_healthy, replica)')).toEqual([
      'kvchat_replica_healthy',
    ]);
    expect(metricNamesInVariableQuery('label_values(replica)')).toEqual([]);
  });
});

describe('exportedMetricNames', () => {
  it('should list TYPE lines and the series a histogram adds', () => {
    const sut = exportedMetricNames(
      '# HELP a_seconds x\n# TYPE a_seconds histogram\n# TYPE b_total counter\n',
    );
    expect([...sut].sort()).toEqual([
      'a_seconds',
      'a_seconds_bucket',
      'a_seconds_count',
      'a_seconds_sum',
      'b_total',
    ]);
  });
});

describe('checkDashboardMetrics', () => {
  const exposition = '# TYPE kvchat_turns_total counter\n# TYPE kvchat_ttft_seconds histogram\n';

  it('should report a panel whose query reads a metric that is not exported', () => {
    const dashboard = {
      panels: [
        {
          type: 'row',
          title: 'r',
          panels: [{ title: 'nested', targets: [{ expr: 'rate(kvchat_typo_total[5m])' }] }],
        },
        { title: 'ok', targets: [{ expr: 'sum(rate(kvchat_turns_total[5m]))' }] },
      ],
    };
    const sut = checkDashboardMetrics(dashboard, exposition);
    expect(sut.queries).toBe(2);
    expect(sut.problems).toEqual([
      { panel: 'nested', expr: 'rate(kvchat_typo_total[5m])', missing: ['kvchat_typo_total'] },
    ]);
  });

  it('should check template variable queries too', () => {
    const dashboard = {
      panels: [],
      templating: {
        list: [{ name: 'replica', type: 'query', query: { query: 'label_values(kvchat_gone, replica)' } }],
      },
    };
    expect(checkDashboardMetrics(dashboard, exposition).problems[0]).toMatchObject({
      panel: 'variable $replica',
      missing: ['kvchat_gone'],
    });
  });

  it('should read only kvchat_ metrics in the shipped dashboard', () => {
    const dashboard: unknown = JSON.parse(
      readFileSync(join(__dirname, '../../config/grafana/kvchat-dashboard.json'), 'utf8'),
    );
    const sut = checkDashboardMetrics(dashboard, '');
    expect(sut.queries).toBeGreaterThan(15);
    for (const name of sut.metrics) expect(name).toMatch(/^kvchat_/);
  });
});
