/** One sample of the Prometheus text exposition format. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/g;

/**
 * Parses the samples of a Prometheus text exposition (format 0.0.4, what vLLM and LMCache serve on
 * `/metrics`): `name{label="value",...} value [timestamp]` per line; `#` lines (HELP, TYPE) and blank
 * lines are skipped, as are lines that do not parse. Values `NaN`, `+Inf` and `-Inf` are kept.
 * Only what kvchat reads from engines is supported: no exemplars, no OpenMetrics extensions.
 */
export function parsePrometheusText(text: string): PromSample[] {
  const samples: PromSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[2]) {
      for (const l of m[2].matchAll(LABEL))
        labels[l[1]] = l[2].replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const value = parseValue(m[3]);
    if (value !== null) samples.push({ name: m[1], labels, value });
  }
  return samples;
}

function parseValue(s: string): number | null {
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  const v = Number(s);
  return Number.isNaN(v) ? null : v;
}

/**
 * Sum of every sample of a counter over its label sets. Python's prometheus_client exposes a
 * counter `foo` as the sample `foo_total`; both spellings are accepted. Undefined when absent.
 */
export function sumCounter(samples: readonly PromSample[], name: string): number | undefined {
  const base = name.endsWith('_total') ? name.slice(0, -'_total'.length) : name;
  let found = false;
  let sum = 0;
  for (const s of samples) {
    if (s.name === `${base}_total` || s.name === base) {
      found = true;
      sum += s.value;
    }
  }
  return found ? sum : undefined;
}
