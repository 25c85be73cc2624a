import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Command } from 'commander';
import { parse } from 'csv-parse/sync';

/**
 * Splits a labelled CSV (text,category) into an examples file and a questions file, stratified by
 * intent with a seeded shuffle, so that no row is in both (duplicate texts go to one side only).
 * For developing the router: `bench:split -- --in banking77_train.csv --examples ex.csv --questions q.csv`.
 */
function main(): void {
  const opts = new Command('bench:split')
    .requiredOption('--in <csv>', 'labelled CSV with a header row')
    .requiredOption('--examples <csv>', 'output: the example pool')
    .requiredOption('--questions <csv>', 'output: the questions')
    .option('--fraction <x>', 'share of each intent that goes to the examples', parseFloat, 0.5)
    .option('--seed <n>', 'shuffle seed', (v) => parseInt(v, 10), 42)
    .option('--label-column <name>', 'CSV column holding the intent', 'category')
    .option('--text-column <name>', 'CSV column holding the message', 'text')
    .parse()
    .opts<{
      in: string;
      examples: string;
      questions: string;
      fraction: number;
      seed: number;
      labelColumn: string;
      textColumn: string;
    }>();
  const records = parse(readFileSync(opts.in), { columns: true, skip_empty_lines: true }) as Record<
    string,
    string
  >[];
  const columns = Object.keys(records[0] ?? {});
  const byIntent = new Map<string, Record<string, string>[]>();
  const seen = new Set<string>();
  for (const r of records) {
    const key = (r[opts.textColumn] ?? '').toLowerCase().replace(/\s+/g, ' ').trim();
    if (seen.has(key)) continue; // a duplicated text would land on both sides
    seen.add(key);
    const intent = r[opts.labelColumn] ?? '';
    if (!byIntent.has(intent)) byIntent.set(intent, []);
    byIntent.get(intent)?.push(r);
  }
  let a = opts.seed >>> 0;
  const random = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const examples: Record<string, string>[] = [];
  const questions: Record<string, string>[] = [];
  for (const rows of byIntent.values()) {
    for (let i = rows.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [rows[i], rows[j]] = [rows[j], rows[i]];
    }
    const cut = Math.max(1, Math.round(rows.length * opts.fraction));
    examples.push(...rows.slice(0, cut));
    questions.push(...rows.slice(cut));
  }
  const csv = (rows: Record<string, string>[]): string =>
    [columns.join(','), ...rows.map((r) => columns.map((c) => quote(r[c] ?? '')).join(','))].join('\n') +
    '\n';
  for (const [path, rows] of [
    [opts.examples, examples],
    [opts.questions, questions],
  ] as const) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, csv(rows));
  }
  process.stdout.write(
    `${byIntent.size} intents: ${examples.length} example rows -> ${opts.examples}, ${questions.length} questions -> ${opts.questions}\n`,
  );
}

const quote = (s: string): string => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

try {
  main();
} catch (e) {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
