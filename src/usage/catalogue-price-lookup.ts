import { Injectable } from '@nestjs/common';
import { UsageConfig } from '../config/usage.config';
import { ModelCatalogue } from '../inference/catalogue/model-catalogue.service';
import { ConfigPriceLookup, type ModelPrice, type PriceLookup } from './price-lookup';

/**
 * Prices from the model catalogue's deployments (`prices:` per deployment, USD per million tokens) when
 * MODEL_CATALOGUE_PATH is set; USAGE_PRICES otherwise, and for a model the catalogue does not price.
 */
@Injectable()
export class CataloguePriceLookup implements PriceLookup {
  private readonly fallback: ConfigPriceLookup;

  constructor(
    private readonly catalogue: ModelCatalogue,
    config: UsageConfig,
  ) {
    this.fallback = new ConfigPriceLookup(config);
  }

  /** @param provider the provider or deployment id that answered, when known */
  priceOf(model: string, provider?: string | null): ModelPrice | null {
    return this.catalogue.priceOf(model, provider) ?? this.fallback.priceOf(model);
  }
}
