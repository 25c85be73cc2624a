import { Injectable, Optional } from '@nestjs/common';
import { type LedgerSavings, UsageLedgerRepository } from '../usage/usage-ledger.repository';
import { CacheStatsSection, type CacheStatsScope, type CacheStatsSource } from './cache-stats.types';

/**
 * `layers.savings` of GET /v1/cache/stats: what the cache layers saved the caller's tenant (or every
 * tenant, for `global`) since the ledger began, from the usage ledger — the sum of the turns' and
 * requests' `savings`: requests, tokens, cost, costAvoided (USD) and the tokens each layer avoided
 * (response-cache hits priced as the misses they replaced; engine-prefix / provider cached tokens).
 * Records still in the `usage` queue are not counted yet. Not broken down by conversation.
 */
@Injectable()
@CacheStatsSection()
export class SavingsStatsSource implements CacheStatsSource {
  readonly section = 'savings';

  /** @param ledger absent where the usage module is not loaded (a caching-only composition): no section then */
  constructor(@Optional() private readonly ledger?: UsageLedgerRepository) {}

  async collect(scope: CacheStatsScope): Promise<LedgerSavings | undefined> {
    if (scope.conversationId || !this.ledger) return undefined;
    return this.ledger.savings(scope.kind === 'global' ? {} : { tenantId: scope.tenantId });
  }
}
