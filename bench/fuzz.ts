import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { Command } from 'commander';
import { runFuzz } from './fuzz-core';

/**
 * `npm run fuzz -- --base-url URL [--api-key KEY] [--seed N] [--requests N] [--concurrency N] [--out FILE]`
 *
 * Hostile requests derived from the running service's OpenAPI document (see `runFuzz`). Prints the
 * responses by status and every server error (status >= 500, or no answer) with the request that caused
 * it; exits 1 when there is any. `summary`: `requests`, `byStatus`, `serverErrors`. The API key may also
 * come from KVCHAT_API_KEY; without one the authenticated operations are probed as 401s only.
 */
const program = new Command()
  .requiredOption('--base-url <url>', 'kvchat base URL, e.g. http://127.0.0.1:3000')
  .option('--api-key <key>', 'API key (default: $KVCHAT_API_KEY)')
  .option('--seed <n>', 'fast-check seed', '1')
  .option('--requests <n>', 'requests to send', '1000')
  .option('--concurrency <n>', 'requests in flight', '4')
  .option('--out <file>', 'JSON report', 'bench/reports/fuzz.json')
  .parse();
const opts = program.opts<{
  baseUrl: string;
  apiKey?: string;
  seed: string;
  requests: string;
  concurrency: string;
  out: string;
}>();

async function main(): Promise<void> {
  const total = Number(opts.requests);
  const bar = new SingleBar(
    { format: 'fuzz [{bar}] {value}/{total} | 5xx: {errors}' },
    Presets.shades_classic,
  );
  let errors = 0;
  bar.start(total, 0, { errors });
  const { summary, results } = await runFuzz(
    {
      baseUrl: opts.baseUrl,
      apiKey: opts.apiKey ?? process.env.KVCHAT_API_KEY,
      seed: Number(opts.seed),
      requests: total,
      concurrency: Number(opts.concurrency),
    },
    (r) => {
      if (r.status >= 500 || r.status === 0) errors++;
      bar.increment(1, { errors });
    },
  );
  bar.stop();
  const failures = results.filter((r) => r.status >= 500 || r.status === 0);
  console.table(
    Object.entries(summary.byStatus)
      .sort(([a], [b]) => Number(a) - Number(b))
      .map(([status, requests]) => ({ status, requests })),
  );
  for (const f of failures) {
    console.log(
      `${f.status} ${f.method} ${f.path} [${f.mutation}] body=${f.bodyPreview.slice(0, 120)} -> ${f.responsePreview ?? ''}`,
    );
  }
  console.log(`${summary.requests} requests, ${summary.serverErrors} server errors (seed ${opts.seed})`);
  const out = resolve(opts.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ summary, failures }, null, 2));
  console.log(`report: ${out}`);
  process.exitCode = summary.serverErrors > 0 ? 1 : 0;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(2);
});
