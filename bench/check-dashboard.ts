import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkDashboardMetrics } from '../src/observability/promql-names';
import { startBenchInstance } from './harness';

/**
 * `npm run check:dashboard`: boots kvchat in-process (embedded defaults, in-process simulator),
 * scrapes its /metrics and checks that every metric name the Grafana dashboard queries is exported.
 * Exits 1 naming each panel and metric that is not. Redis must run on REDIS_URL.
 */
async function main(): Promise<number> {
  const path = process.argv[2] ?? join(__dirname, '..', '..', 'config', 'grafana', 'kvchat-dashboard.json');
  const dashboard: unknown = JSON.parse(readFileSync(path, 'utf8'));
  const app = await startBenchInstance({ LOG_LEVEL: 'error', SIMULATOR_TIME_SCALE: '0' }, 'check-dashboard');
  try {
    const res = await fetch(`${app.url}/metrics`);
    if (!res.ok) throw new Error(`GET /metrics answered ${res.status}`);
    const { problems, queries, metrics } = checkDashboardMetrics(dashboard, await res.text());
    for (const p of problems) {
      console.error(`✗ ${p.panel}: ${p.missing.join(', ')} not exported\n    ${p.expr}`);
    }
    if (problems.length > 0) {
      console.error(
        `${problems.length} of ${queries} dashboard queries read metrics kvchat does not export (${path}).`,
      );
      return 1;
    }
    console.log(
      `✓ ${queries} dashboard queries read ${metrics.size} metrics; kvchat exports every one (${path}).`,
    );
    return 0;
  } finally {
    await app.close();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
