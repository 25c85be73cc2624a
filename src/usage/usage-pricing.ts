import { randomUUID } from 'node:crypto';
import type { ModelPrice } from './price-lookup';
import { type CacheLayer, NO_KEY, type UsageInput, type UsageRow } from './usage.types';

const PER_TOKEN = 1e-6;
/** USD are kept to 1e-9 (the ledger's numeric scale). */
const usd = (x: number): number => Math.round(x * 1e9) / 1e9;
const tokens = (x: number | undefined | null): number => Math.max(0, Math.round(x ?? 0));

/**
 * Prices one request as a ledger row.
 * - cost = (prompt − cached) × input + cached × cachedInput + completion × output
 * - engine-prefix savings = cached × (input − cachedInput): the prefill the cache spared
 * - a response-cache hit saves what the miss it replaced would have cost, at full prompt price
 * Prices are USD per million tokens; a model without a price costs 0 and saves 0.
 */
export function priceUsage(input: UsageInput, price: ModelPrice | null): UsageRow {
  const prompt = tokens(input.promptTokens);
  const cached = Math.min(prompt, tokens(input.cachedTokens));
  const completion = tokens(input.completionTokens);
  const p = price ?? { input: 0, cachedInput: 0, output: 0 };
  const layer: CacheLayer = input.cacheLayer ?? (cached > 0 ? 'engine-prefix' : 'none');
  const cost = usd(
    ((prompt - cached) * p.input + cached * p.cachedInput + completion * p.output) * PER_TOKEN,
  );
  const prefixSaved = usd(cached * Math.max(0, p.input - p.cachedInput) * PER_TOKEN);
  const replacedPrompt = tokens(input.replaced?.promptTokens);
  const replacedCompletion = tokens(input.replaced?.completionTokens);
  const hitTokens = replacedPrompt + replacedCompletion;
  const hitSaved = usd((replacedPrompt * p.input + replacedCompletion * p.output) * PER_TOKEN);
  const exact = layer === 'exact';
  const semantic = layer === 'semantic';
  const row: UsageRow = {
    id: randomUUID(),
    occurredAt: (input.occurredAt ?? new Date()).toISOString(),
    tenantId: input.tenantId,
    keyId: input.keyId ?? NO_KEY,
    requestId: input.requestId.slice(0, 128),
    conversationId: input.conversationId ?? null,
    endpoint: input.endpoint,
    model: input.model.slice(0, 200),
    provider: input.provider ?? null,
    deployment: input.deployment?.slice(0, 200) ?? null,
    promptTokens: prompt,
    cachedTokens: cached,
    completionTokens: completion,
    cacheLayer: layer,
    avoidedTokensExact: exact ? hitTokens : 0,
    avoidedCostExact: exact ? hitSaved : 0,
    avoidedTokensSemantic: semantic ? hitTokens : 0,
    avoidedCostSemantic: semantic ? hitSaved : 0,
    avoidedTokensPrefix: cached,
    avoidedCostPrefix: prefixSaved,
    cost,
    costAvoided: 0,
    latencyMs: tokens(input.latencyMs),
    ttftMs: input.ttftMs === undefined || input.ttftMs === null ? null : tokens(input.ttftMs),
  };
  row.costAvoided = usd(row.avoidedCostExact + row.avoidedCostSemantic + row.avoidedCostPrefix);
  return row;
}

/**
 * One engine call's cost by token kind, USD (for Langfuse `costDetails`): uncached prompt tokens,
 * cached prompt tokens, completion tokens and their total. Null when the model has no price.
 */
export function costBreakdown(
  usage: { promptTokens: number; cachedTokens: number; completionTokens: number },
  price: ModelPrice | null,
): { input: number; inputCached: number; output: number; total: number } | null {
  if (!price) return null;
  const prompt = tokens(usage.promptTokens);
  const cached = Math.min(prompt, tokens(usage.cachedTokens));
  const input = usd((prompt - cached) * price.input * PER_TOKEN);
  const inputCached = usd(cached * price.cachedInput * PER_TOKEN);
  const output = usd(tokens(usage.completionTokens) * price.output * PER_TOKEN);
  return { input, inputCached, output, total: usd(input + inputCached + output) };
}
