import { type DynamicModule, Module, type Provider, type Type } from '@nestjs/common';
import { registerQueue } from '../queues/queue-options';
import { queueProcessor } from '../queues/queue-processor';
import { UsageRollupJob } from './jobs/usage-rollup.job';
import { UsageWriteJob } from './jobs/usage-write.job';
import { ModelCatalogueModule } from '../inference/catalogue/model-catalogue.module';
import { CataloguePriceLookup } from './catalogue-price-lookup';
import { PRICE_LOOKUP, type PriceLookup } from './price-lookup';
import { UsageLedgerRepository } from './usage-ledger.repository';
import { UsageRecorder } from './usage-recorder.service';
import { UsageMetrics } from './usage.metrics';
import { USAGE_QUEUE } from './usage.queue';

/**
 * The usage ledger: UsageRecorder (non-blocking, batched into the `usage` queue), the writer and the
 * daily rollup (its jobs), reports (UsageLedgerRepository.report) and Prometheus counters. Prices come
 * through the PRICE_LOOKUP port: the model catalogue's deployment prices, else USAGE_PRICES.
 */
@Module({})
export class UsageModule {
  /** @param options.prices the PriceLookup implementation (default: CataloguePriceLookup) */
  static forRoot(options: { prices?: Type<PriceLookup> } = {}): DynamicModule {
    const prices: Provider = { provide: PRICE_LOOKUP, useClass: options.prices ?? CataloguePriceLookup };
    return {
      module: UsageModule,
      global: true,
      imports: [
        ModelCatalogueModule,
        // Write batches carry their records: keep no completed job (each would hold a batch in Redis),
        // keep failed ones (their records are not yet stored) and retry longer than the default, so a
        // database outage of minutes loses nothing.
        registerQueue(USAGE_QUEUE, {
          attempts: 12,
          backoff: { type: 'exponential', delay: 1000 },
          removeOnComplete: true,
        }),
      ],
      providers: [
        prices,
        UsageMetrics,
        UsageRecorder,
        UsageLedgerRepository,
        // The writer and the rollup run only in processes that take jobs (KVCHAT_ROLE=worker or all).
        queueProcessor(UsageWriteJob),
        queueProcessor(UsageRollupJob),
      ],
      exports: [UsageRecorder, UsageLedgerRepository, PRICE_LOOKUP],
    };
  }
}
