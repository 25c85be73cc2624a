import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { ConfigFigures } from './multiturn-report';

/**
 * Renders the chart of a multi-turn report as SVG (vega-lite compiled to vega, rendered headless):
 * TTFT p50 by turn index (top), the cached-token share by turn index (middle) and the prompt tokens
 * the engine computed (prefilled) per turn, mean per conversation (bottom: the gap between lines is
 * the prefill the caches saved), one line per configuration.
 * @param options.ttftTitle axis title of the TTFT panel (say whose clock it is: model time or wall)
 */
export async function renderMultiturnChart(
  configs: Record<string, ConfigFigures>,
  options: { title: string | string[]; names?: string[]; ttftTitle?: string },
): Promise<string> {
  const names = options.names ?? Object.keys(configs);
  const values = names.flatMap((config) =>
    (configs[config]?.byTurn ?? []).map((row) => ({
      config,
      turn: row.turn,
      ttftMs: row.ttftP50Ms,
      cachedShare: row.cachedShare,
      computedTokens: Math.round(row.promptTokens * (1 - row.cachedShare)),
    })),
  );
  const color = { field: 'config', type: 'nominal', title: 'configuration', sort: names } as const;
  const x = { field: 'turn', type: 'quantitative', title: 'turn index', axis: { tickMinStep: 1 } } as const;
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: options.title, fontSize: 14 },
    data: { values },
    vconcat: [
      {
        width: 640,
        height: 240,
        mark: { type: 'line', point: true },
        encoding: {
          x,
          y: {
            field: 'ttftMs',
            type: 'quantitative',
            title: options.ttftTitle ?? 'engine TTFT p50 (ms, model time)',
          },
          color,
        },
      },
      {
        width: 640,
        height: 200,
        mark: { type: 'line', point: true },
        encoding: {
          x,
          y: {
            field: 'cachedShare',
            type: 'quantitative',
            title: 'cached tokens / prompt tokens',
            scale: { domain: [0, 1] },
            axis: { format: '%' },
          },
          color,
        },
      },
      {
        width: 640,
        height: 200,
        mark: { type: 'line', point: true },
        encoding: {
          x,
          y: {
            field: 'computedTokens',
            type: 'quantitative',
            title: 'prompt tokens prefilled (mean)',
          },
          color,
        },
      },
    ],
    config: { font: 'sans-serif' },
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}
