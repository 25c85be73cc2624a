import type { BudgetName } from './limits.types';

/**
 * The UTC calendar period a budget counts in at `now`: its label (`2026-11-28` for a day,
 * `2026-11` for a month; part of the counter's key) and the instant it ends (the next one begins).
 */
export function periodOf(budget: BudgetName, now: Date): { label: string; end: Date } {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  if (budget.endsWith('PerDay')) {
    const d = now.getUTCDate();
    return { label: now.toISOString().slice(0, 10), end: new Date(Date.UTC(y, m, d + 1)) };
  }
  return { label: now.toISOString().slice(0, 7), end: new Date(Date.UTC(y, m + 1, 1)) };
}

/**
 * A reset delay as OpenAI writes it in `x-ratelimit-reset-*` (Go duration style): `120ms`, `1s`,
 * `6m0s`, `1h2m3s`. Whole seconds are rounded up, below one second milliseconds are kept.
 * @param ms milliseconds, ≥ 0
 */
export function formatResetDuration(ms: number): string {
  const safe = Math.max(0, ms);
  if (safe < 1000) return `${Math.ceil(safe)}ms`;
  const total = Math.ceil(safe / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}
