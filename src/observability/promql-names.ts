/** PromQL words that look like identifiers but are not metric names. */
const PROMQL_KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'and',
  'or',
  'unless',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression reads. Label matchers (`{...}`), grouping clauses
 * (`by (...)`), ranges (`[5m]`), strings, numbers, function names (an identifier followed by `(`),
 * keywords and Grafana variables (`$__rate_interval`) are not metric names.
 */
export function metricNamesInPromql(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[A-Za-z_:][\w:]*(?=\s*(\()?)/g)) {
    const word = m[0];
    if (m[1] === '(') continue; // a function call
    if (PROMQL_KEYWORDS.has(word.toLowerCase())) continue;
    const before = stripped.slice(0, m.index);
    if (/[\d.]$/.test(before) && /^[eE]?\d*$/.test(word)) continue; // part of a number like 1e3
    names.add(word);
  }
  return [...names];
}

/**
 * The metric names a Prometheus exposition offers, from its `# TYPE` lines (present even before a
 * labelled metric has its first sample). A histogram or summary `x` also offers `x_bucket`,
 * `x_sum` and `x_count`.
 */
export function exportedMetricNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\w+)$/gm)) {
    const [, name, type] = m;
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix);
  }
  return names;
}

/**
 * The metric names a Grafana Prometheus template-variable query reads: `label_values(metric, label)`
 * reads `metric`, `label_values(label)` none, `query_result(expr)` the names in `expr`.
 */
export function metricNamesInVariableQuery(query: string): string[] {
  const labelValues = /^\s*label_values\(\s*(.*?)\s*,\s*\w+\s*\)\s*$/.exec(query);
  if (labelValues) return metricNamesInPromql(labelValues[1]);
  if (/^\s*label_values\(\s*\w+\s*\)\s*$/.test(query)) return [];
  const queryResult = /^\s*query_result\((.*)\)\s*$/.exec(query);
  return metricNamesInPromql(queryResult ? queryResult[1] : query);
}

/** A Grafana panel query that reads metrics the app does not export. */
export interface DashboardProblem {
  panel: string;
  expr: string;
  missing: string[];
}

/**
 * Checks a Grafana dashboard (its JSON model) against an exposition: every metric name every
 * panel target and every query variable reads must be exported, and every panel query must read one.
 * @returns the queries naming unknown metrics (empty when the dashboard is consistent) and the number of queries checked
 */
export function checkDashboardMetrics(
  dashboard: unknown,
  exposition: string,
): { problems: DashboardProblem[]; queries: number; metrics: Set<string> } {
  const exported = exportedMetricNames(exposition);
  const problems: DashboardProblem[] = [];
  const used = new Set<string>();
  let queries = 0;
  const visit = (panels: unknown): void => {
    if (!Array.isArray(panels)) return;
    for (const panel of panels as { title?: string; targets?: { expr?: unknown }[]; panels?: unknown }[]) {
      for (const target of panel.targets ?? []) {
        if (typeof target.expr !== 'string') continue;
        queries++;
        const names = metricNamesInPromql(target.expr);
        names.forEach((n) => used.add(n));
        const missing = names.filter((n) => !exported.has(n));
        if (names.length === 0 || missing.length > 0) {
          problems.push({
            panel: panel.title ?? '(untitled)',
            expr: target.expr,
            missing: names.length ? missing : ['(no metric)'],
          });
        }
      }
      visit(panel.panels);
    }
  };
  const model = dashboard as {
    panels?: unknown;
    templating?: { list?: { name?: string; type?: string; query?: unknown }[] };
  };
  visit(model.panels);
  for (const variable of model.templating?.list ?? []) {
    if (variable.type !== 'query') continue;
    const query =
      typeof variable.query === 'string'
        ? variable.query
        : (variable.query as { query?: unknown } | undefined)?.query;
    if (typeof query !== 'string') continue;
    queries++;
    const names = metricNamesInVariableQuery(query);
    names.forEach((n) => used.add(n));
    const missing = names.filter((n) => !exported.has(n));
    if (missing.length > 0)
      problems.push({ panel: `variable $${variable.name ?? '?'}`, expr: query, missing });
  }
  return { problems, queries, metrics: used };
}
