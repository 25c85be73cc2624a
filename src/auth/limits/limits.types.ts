/**
 * Spending caps of a key or a tenant, per UTC calendar day and month. A null or absent field is no
 * cap. Tokens are prompt + completion tokens the engine processed (response-cache hits cost none);
 * spend is in USD as priced by the usage ledger's price lookup.
 */
export interface Budgets {
  tokensPerDay?: number | null;
  tokensPerMonth?: number | null;
  spendPerDay?: number | null;
  spendPerMonth?: number | null;
}

export type BudgetName = keyof Budgets;

export const BUDGET_NAMES: readonly BudgetName[] = [
  'tokensPerDay',
  'tokensPerMonth',
  'spendPerDay',
  'spendPerMonth',
];

/** Limits of one holder (a key or a tenant). Null = no limit. */
export interface Limits {
  /** Requests per minute. */
  rpm: number | null;
  /** Tokens per minute, charged from real usage after each call. */
  tpm: number | null;
  budgets: Budgets | null;
}

/** No limit at all. */
export const UNLIMITED: Limits = { rpm: null, tpm: null, budgets: null };
