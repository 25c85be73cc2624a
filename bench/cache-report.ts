import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';

/** One pair of questions: the anchor is cached, the probe is asked. */
export interface QuestionPair {
  anchor: string;
  probe: string;
  /** 1 = same meaning (should hit the anchor), 0 = different meaning (must not hit). */
  label: 0 | 1;
}

/** A question of a log and its intent (questions of one intent share one answer). */
export interface LogQuestion {
  text: string;
  intent: string;
}

/** Strips the `**` markers some pair files put around the changed word. */
const clean = (s: string): string => s.replace(/\*/g, '').trim();

/**
 * Reads a pairs file: a JSON array of `{origin, similar}` (all same meaning) or of
 * `{sentence1, sentence2, label}`, or a CSV with `sentence1,sentence2,label` columns.
 */
export function readPairs(path: string): QuestionPair[] {
  const text = readFileSync(path, 'utf8');
  const rows: Record<string, string>[] = path.toLowerCase().endsWith('.json')
    ? (JSON.parse(text) as Record<string, string>[])
    : (parse(text, {
        columns: true,
        skip_empty_lines: true,
        relax_quotes: true,
        relax_column_count: true,
        trim: true,
      }) as Record<string, string>[]);
  return rows
    .map((r): QuestionPair => {
      if ('origin' in r) return { anchor: clean(r.origin ?? ''), probe: clean(r.similar ?? ''), label: 1 };
      return {
        anchor: clean(r.sentence1 ?? ''),
        probe: clean(r.sentence2 ?? ''),
        label: String(r.label ?? '1').trim() === '0' ? 0 : 1,
      };
    })
    .filter((p) => p.anchor.length > 0 && p.probe.length > 0);
}

/** Reads a question log CSV with a text column and an intent column (default `text`, `category`). */
export function readLog(path: string, textColumn = 'text', intentColumn = 'category'): LogQuestion[] {
  const rows = parse(readFileSync(path, 'utf8'), {
    columns: true,
    skip_empty_lines: true,
    relax_quotes: true,
  }) as Record<string, string>[];
  return rows
    .map((r) => ({ text: String(r[textColumn] ?? '').trim(), intent: String(r[intentColumn] ?? '').trim() }))
    .filter((q) => q.text.length > 0);
}

/** What the cache would do with one probe, as `ResponseCache.explain` shows it. */
export interface ProbeExplanation {
  label: 0 | 1;
  /** Index of the probe's own anchor. */
  anchor: number;
  /** Anchor index of the exact entry, or -1. */
  exact: number;
  /** Nearest candidates, most similar first: anchor index, similarity, rejected by a guard? */
  candidates: { anchor: number; similarity: number; rejectedBy: string | null }[];
}

/** Precision/recall at one threshold, with and without the guards. */
export interface SweepRow {
  threshold: number;
  semanticRecall: number;
  falseHitRate: number | null;
  /** Correct hits / all hits. */
  precision: number | null;
  /** Same-meaning probes answered with another anchor's answer / same-meaning probes. */
  wrongEntryHitRate: number;
  /** The same figures with every guard off. */
  unguarded: { semanticRecall: number; falseHitRate: number | null; precision: number | null };
}

/** The anchor a probe is answered with at `threshold` (-1 = a miss). */
export function servedAnchor(p: ProbeExplanation, threshold: number, guards: boolean): number {
  if (p.exact >= 0) return p.exact;
  const hit = p.candidates.find((c) => c.similarity >= threshold && (!guards || c.rejectedBy === null));
  return hit ? hit.anchor : -1;
}

/** Recall, false-hit rate and precision at `threshold`. */
export function scoreAt(probes: ProbeExplanation[], threshold: number): SweepRow {
  const score = (guards: boolean) => {
    let positives = 0;
    let negatives = 0;
    let correct = 0;
    let wrong = 0;
    let falseHits = 0;
    for (const p of probes) {
      const served = servedAnchor(p, threshold, guards);
      if (p.label === 1) {
        positives++;
        if (served === p.anchor) correct++;
        else if (served >= 0) wrong++;
      } else {
        negatives++;
        if (served >= 0) falseHits++;
      }
    }
    const hits = correct + wrong + falseHits;
    return {
      semanticRecall: ratio(correct, positives),
      falseHitRate: negatives > 0 ? ratio(falseHits, negatives) : null,
      precision: hits > 0 ? ratio(correct, hits) : null,
      wrongEntryHitRate: ratio(wrong, positives),
    };
  };
  const guarded = score(true);
  const unguarded = score(false);
  return {
    threshold,
    ...guarded,
    unguarded: {
      semanticRecall: unguarded.semanticRecall,
      falseHitRate: unguarded.falseHitRate,
      precision: unguarded.precision,
    },
  };
}

/**
 * The calibration half of a pair set: pairs whose anchor's hash is even. Thresholds are chosen on it
 * and reported on the other (held-out) half, so the default is not tuned on what it is judged by.
 */
export function calibrationHalf(anchor: string): boolean {
  let h = 0x811c9dc5;
  for (let i = 0; i < anchor.length; i++) h = Math.imul(h ^ anchor.charCodeAt(i), 0x01000193) >>> 0;
  return h % 2 === 0;
}

/**
 * The operating point: the sweep row with the highest recall whose false-hit rate is at most
 * `maxFalseHitRate` when the set has different-meaning pairs, else whose precision (which then only
 * counts answers from another anchor) is at least `minPrecision`; ties go to the higher threshold.
 * Null when no row qualifies.
 */
export function recommendThreshold(
  sweep: readonly SweepRow[],
  maxFalseHitRate: number,
  minPrecision: number,
): SweepRow | null {
  let best: SweepRow | null = null;
  for (const row of sweep) {
    if (row.falseHitRate !== null ? row.falseHitRate > maxFalseHitRate : (row.precision ?? 1) < minPrecision)
      continue;
    if (
      !best ||
      row.semanticRecall > best.semanticRecall ||
      (row.semanticRecall === best.semanticRecall && row.threshold > best.threshold)
    )
      best = row;
  }
  return best;
}

/** Rounds to 4 decimals (NaN-safe). */
export const ratio = (a: number, b: number): number => (b > 0 ? Math.round((a / b) * 10_000) / 10_000 : 0);
