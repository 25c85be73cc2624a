import { Module, type Provider } from '@nestjs/common';
import { CachingConfig } from '../config/caching.config';
import { PgVectorStore } from '../database/vector-store';
import { InferenceModule } from '../inference/inference.module';
import { sharedWordVectors, type WordSimilarity } from '../inference/word-vectors';
import { guardsByName, type ResponseCacheGuard } from './cache-guards';
import { EmbeddingCache } from './embedding-cache';
import { ResponseCacheAdmin } from './response-cache-admin.service';
import { ResponseCacheController } from './response-cache.controller';
import { RESPONSE_CACHE_GUARDS, ResponseCache } from './response-cache.service';
import { ResponseCacheStats } from './response-cache.stats';
import { PgVectorIndex } from './pgvector.index';
import { RedisResponseCacheStore } from './redis-response-cache.store';
import { RESPONSE_CACHE_STORE } from './response-cache.store';
import { ResponseStatsSource } from './response-stats.source';
import { SavingsStatsSource } from './savings-stats.source';
import { SemanticIndex } from './semantic-index';
import { SingleFlight } from './single-flight';
import { VECTOR_INDEX } from './vector-index';
import { verifierProvider } from './verifier';

/**
 * The guards named by RESPONSE_CACHE_GUARDS, in that order; the content-word guard matches
 * near-synonyms with the in-process word vectors when RESPONSE_CACHE_WORD_VECTORS is on.
 */
const guardsProvider: Provider = {
  provide: RESPONSE_CACHE_GUARDS,
  inject: [CachingConfig],
  useFactory: (config: CachingConfig): ResponseCacheGuard[] => {
    // The guards judge semantic hits only: with no semantic lookup the 40 MB of vectors stay unloaded.
    const words: WordSimilarity | undefined =
      config.RESPONSE_CACHE_ENABLED &&
      config.RESPONSE_CACHE_SEMANTIC &&
      config.RESPONSE_CACHE_WORD_VECTORS &&
      config.RESPONSE_CACHE_GUARDS.includes('term')
        ? sharedWordVectors()
        : undefined;
    return guardsByName(config.RESPONSE_CACHE_GUARDS, words);
  },
};

/**
 * The response cache: exact (RESPONSE_CACHE_STORE: Redis) and semantic (embeddings + VECTOR_INDEX:
 * pgvector) lookups with guards and an
 * optional verifier, single flight, per-tenant bounds, invalidation (`DELETE /v1/cache`) and the
 * `response` and `savings` (from the usage ledger) sections of `GET /v1/cache/stats` (discovered by the
 * cache-stats module).
 */
@Module({
  imports: [InferenceModule],
  controllers: [ResponseCacheController],
  providers: [
    PgVectorStore,
    // The exact store and the vector index: register another implementation here (docs/architecture.md).
    { provide: RESPONSE_CACHE_STORE, useClass: RedisResponseCacheStore },
    { provide: VECTOR_INDEX, useClass: PgVectorIndex },
    ResponseCacheStats,
    SemanticIndex,
    SingleFlight,
    guardsProvider,
    verifierProvider,
    ResponseCache,
    ResponseCacheAdmin,
    ResponseStatsSource,
    SavingsStatsSource,
    EmbeddingCache,
  ],
  exports: [ResponseCache, ResponseCacheAdmin, EmbeddingCache],
})
export class CachingModule {}
