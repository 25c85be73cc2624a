import { Injectable } from '@nestjs/common';
import { UsageConfig } from '../config/usage.config';

/** A model's token prices, USD per million tokens. */
export interface ModelPrice {
  /** Uncached prompt tokens. */
  input: number;
  /** Prompt tokens the engine or provider served from its cache (engine prefix cache, provider prompt caching). */
  cachedInput: number;
  /** Completion tokens. */
  output: number;
}

/**
 * The port through which the usage ledger prices tokens. The model catalogue (issue 11) implements
 * it from its deployments' prices and is bound in place of ConfigPriceLookup at the composition
 * root (`UsageModule.forRoot({ prices })`). Lookups are synchronous: they run on the request path.
 */
export interface PriceLookup {
  /**
   * @param model the model as recorded (the catalogue's id)
   * @param provider the provider that served it, when known (prices differ per deployment)
   * @returns the price, or null when the model has none (it is then recorded at cost 0)
   */
  priceOf(model: string, provider?: string | null): ModelPrice | null;
}

export const PRICE_LOOKUP = Symbol('PRICE_LOOKUP');

/**
 * Prices from USAGE_PRICES (`{"<model>": {"input": 3, "cachedInput": 0.3, "output": 15}}`, USD per
 * million tokens; `cachedInput` defaults to `input`), until the model catalogue provides them.
 */
@Injectable()
export class ConfigPriceLookup implements PriceLookup {
  private readonly prices: ReadonlyMap<string, ModelPrice>;

  /** @throws Error naming USAGE_PRICES and the model when a price is malformed (at boot) */
  constructor(config: UsageConfig) {
    this.prices = parsePrices(config.USAGE_PRICES);
  }

  priceOf(model: string): ModelPrice | null {
    return this.prices.get(model) ?? null;
  }
}

/** Parses USAGE_PRICES. @throws Error naming the variable and the bad entry */
export function parsePrices(json: string | undefined): Map<string, ModelPrice> {
  const out = new Map<string, ModelPrice>();
  if (!json) return out;
  const raw = JSON.parse(json) as unknown;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error('USAGE_PRICES must be a JSON object of model -> {input, cachedInput?, output}');
  }
  for (const [model, value] of Object.entries(raw as Record<string, unknown>)) {
    const v = value as Partial<Record<keyof ModelPrice, unknown>> | null;
    const num = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0;
    if (!v || !num(v.input) || !num(v.output) || (v.cachedInput !== undefined && !num(v.cachedInput))) {
      throw new Error(
        `USAGE_PRICES: model ${model} needs numbers >= 0 for input, output (and optional cachedInput)`,
      );
    }
    out.set(model, {
      input: v.input,
      output: v.output,
      cachedInput: num(v.cachedInput) ? v.cachedInput : v.input,
    });
  }
  return out;
}
