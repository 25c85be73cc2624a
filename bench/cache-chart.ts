import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** One pass over the question log, as `bench:cache` reports it (`log.perPass`). */
export interface LogPass {
  pass: number;
  lookups: number;
  exactHits: number;
  semanticHits: number;
  wrongIntentHits: number;
}

/**
 * Renders the response-cache chart of a `bench:cache` run as SVG (vega-lite, rendered headless): for
 * each pass over the question log, the share of questions answered from the cache, split into exact
 * hits, semantic hits with the right intent's answer and semantic hits with another intent's answer.
 * Pass 1 meets each question for the first time (only repeats within the log can hit); from pass 2 on
 * every question was asked before.
 */
export async function renderCacheChart(
  passes: readonly LogPass[],
  options: { title: string[] },
): Promise<string> {
  const values = passes.flatMap((p) => [
    { pass: `pass ${p.pass}`, kind: 'exact hit', share: p.exactHits / p.lookups },
    {
      pass: `pass ${p.pass}`,
      kind: 'semantic hit (same intent)',
      share: (p.semanticHits - Math.min(p.semanticHits, p.wrongIntentHits)) / p.lookups,
    },
    {
      pass: `pass ${p.pass}`,
      kind: "semantic hit (another intent's answer)",
      share: Math.min(p.semanticHits, p.wrongIntentHits) / p.lookups,
    },
  ]);
  const kinds = ['exact hit', 'semantic hit (same intent)', "semantic hit (another intent's answer)"];
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: options.title, fontSize: 14 },
    data: { values },
    width: 420,
    height: 260,
    mark: { type: 'bar' },
    encoding: {
      x: { field: 'pass', type: 'nominal', title: 'pass over the question log', axis: { labelAngle: 0 } },
      y: {
        field: 'share',
        type: 'quantitative',
        title: 'questions answered from the response cache',
        stack: 'zero',
        scale: { domain: [0, 1] },
        axis: { format: '%' },
      },
      color: {
        field: 'kind',
        type: 'nominal',
        title: 'answered by',
        sort: kinds,
        scale: { domain: kinds, range: ['#4c78a8', '#72b7b2', '#e45756'] },
        legend: { labelLimit: 400, orient: 'bottom', direction: 'vertical' },
      },
      order: { field: 'kind', sort: 'ascending' },
    },
    config: { font: 'sans-serif' },
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}
