import { Module } from '@nestjs/common';
import { ModelCatalogue } from './model-catalogue.service';

/**
 * The model catalogue alone (no engine): InferenceModule routes by it, the usage ledger prices by it.
 * Loading it validates MODEL_CATALOGUE_PATH, so a bad entry fails the boot.
 */
@Module({ providers: [ModelCatalogue], exports: [ModelCatalogue] })
export class ModelCatalogueModule {}
