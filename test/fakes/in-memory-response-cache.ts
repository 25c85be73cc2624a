import { guardsByName } from '../../src/caching/cache-guards';
import { ResponseCache } from '../../src/caching/response-cache.service';
import { ResponseCacheStats } from '../../src/caching/response-cache.stats';
import { SemanticIndex } from '../../src/caching/semantic-index';
import { SingleFlight } from '../../src/caching/single-flight';
import type { ResponseCacheVerifier } from '../../src/caching/verifier';
import { CachingConfig } from '../../src/config/caching.config';
import type { EmbeddingsService } from '../../src/inference/embeddings.service';
import { FakeEmbeddings } from './fake-embeddings';
import { InMemoryResponseCacheStore } from './in-memory-response-cache.store';
import { InMemoryVectorIndex } from './in-memory-vector-index';

/** A ResponseCache wired to in-memory fakes, and the fakes to inspect. */
export interface InMemoryResponseCache {
  sut: ResponseCache;
  config: CachingConfig;
  store: InMemoryResponseCacheStore;
  vectors: InMemoryVectorIndex;
  embeddings: FakeEmbeddings;
  stats: ResponseCacheStats;
  semantic: SemanticIndex;
}

/**
 * The real ResponseCache (guards, single flight, semantic index) over InMemoryResponseCacheStore,
 * InMemoryVectorIndex and lexical FakeEmbeddings: no Redis, no database, no engine. Word vectors are
 * off (RESPONSE_CACHE_WORD_VECTORS would load them; the content-word guard then matches words exactly).
 */
export function buildInMemoryResponseCache(
  overrides: Partial<CachingConfig> = {},
  verifier: ResponseCacheVerifier | null = null,
): InMemoryResponseCache {
  const config = Object.assign(new CachingConfig(), { RESPONSE_CACHE_WORD_VECTORS: false }, overrides);
  const store = new InMemoryResponseCacheStore({
    ttlMs: config.RESPONSE_CACHE_TTL_SECONDS * 1000,
    maxEntriesPerTenant: config.RESPONSE_CACHE_MAX_ENTRIES_PER_TENANT,
  });
  const vectors = new InMemoryVectorIndex();
  const embeddings = new FakeEmbeddings();
  const semantic = new SemanticIndex(config, vectors, embeddings as unknown as EmbeddingsService);
  const stats = new ResponseCacheStats(store);
  const sut = new ResponseCache(
    config,
    store,
    semantic,
    stats,
    new SingleFlight(),
    guardsByName(config.RESPONSE_CACHE_GUARDS),
    verifier,
  );
  return { sut, config, store, vectors, embeddings, stats, semantic };
}
