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

/** Engine replicas (OpenAI-compatible, e.g. vLLM) or the in-process simulator. */
export class InferenceConfig {
  /**
   * Comma-separated OpenAI-compatible base URLs, one per replica (`http://vllm-0:8000/v1,...`).
   * Unset = start the engine simulator in-process (answers are synthetic).
   */
  @IsOptional()
  @Transform(toList)
  @IsArray()
  @IsUrl(
    { require_tld: false, require_protocol: true },
    { each: true, message: 'each entry must be an http(s) URL' },
  )
  INFERENCE_ENDPOINTS?: string[];
  /** Model name sent to the engine. Unset = the first model the engine lists. */
  @IsOptional() @IsString() INFERENCE_MODEL?: string;
  /** Bearer key for the engine (vLLM `--api-key`). */
  @IsOptional() @IsString() INFERENCE_API_KEY?: string;
  /**
   * The model catalogue (YAML, see docs/providers.md), e.g. `config/models.yaml`: public model names ->
   * deployments (vLLM, OpenAI-compatible, Anthropic) and fallbacks. Unset = one model on the engine replicas.
   */
  @IsOptional() @IsString() MODEL_CATALOGUE_PATH?: string;
  /** Consecutive failures (429, 5xx, unreachable, first-token timeout) that open a deployment's circuit breaker. */
  @IsInt() @Min(1) PROVIDER_BREAKER_FAILURES = 3;
  /** How long an open circuit breaker skips its deployment before one trial request, ms. */
  @IsInt() @Min(100) PROVIDER_BREAKER_COOLDOWN_MS = 30_000;
  /** Whole-request timeout, ms. */
  @IsInt() @Min(100) INFERENCE_TIMEOUT_MS = 120_000;
  /** Time allowed until the first token, ms; past it the turn fails with a 504. */
  @IsInt() @Min(100) INFERENCE_FIRST_TOKEN_TIMEOUT_MS = 60_000;
  /** Context window of the model, tokens (vLLM `--max-model-len`). */
  @IsInt() @Min(256) INFERENCE_MAX_CONTEXT_TOKENS = 32_768;
  /** Default completion budget when a turn does not set `maxTokens`, tokens. */
  @IsInt() @Min(1) INFERENCE_DEFAULT_MAX_TOKENS = 512;
  /** Tokens per KV block of the engine (vLLM `--block-size`): prefix routing and reuse accounting hash these. */
  @IsInt() @Min(1) INFERENCE_BLOCK_SIZE = 16;
  /**
   * Replica routing policy: `prefix` (the replica holding the longest block chain of the prompt, with a
   * load penalty; falls back to `session`), `session` (rendezvous hashing on the conversation, spilling
   * past ROUTER_SPILL_THRESHOLD), `least-loaded`, `round-robin`.
   */
  @IsIn(['round-robin', 'least-loaded', 'session', 'prefix'])
  ROUTER_POLICY: 'round-robin' | 'least-loaded' | 'session' | 'prefix' = 'prefix';
  /** In-flight requests above the replicas' mean past which `session` spills to the least-loaded replica. */
  @IsInt() @Min(1) ROUTER_SPILL_THRESHOLD = 8;
  /** `prefix`: a replica's matched prefix counts only from this many tokens (shorter matches are noise). */
  @IsInt() @Min(0) ROUTER_PREFIX_MIN_MATCH_TOKENS = 256;
  /**
   * `prefix`: score = matched share of the prompt (0..1) minus this weight x (in-flight requests above
   * the least-loaded replica). 0.1: a conversation moves off its replica only 10 requests above the rest.
   */
  @IsNumber() @Min(0) @Max(10) ROUTER_PREFIX_LOAD_WEIGHT = 0.1;
  /** `prefix`: block hashes the router remembers per replica (LRU), about the replica's KV capacity in blocks. */
  @IsInt() @Min(16) ROUTER_PREFIX_CAPACITY_BLOCKS = 131_072;
  /** Other replicas tried when the chosen one is unreachable (connection refused before any token). */
  @IsInt() @Min(0) ROUTER_RETRIES = 2;
  /** Seconds between replica health probes (unhealthy replicas are retried at this pace). */
  @IsInt() @Min(1) ROUTER_HEALTH_INTERVAL_SECONDS = 5;
  /** Seconds between scrapes of each replica's `/metrics` (vLLM prefix cache, LMCache); 0 = only on demand. */
  @IsInt() @Min(0) ENGINE_METRICS_SCRAPE_SECONDS = 15;
  /** Replicas of the in-process simulator (only when INFERENCE_ENDPOINTS is unset). */
  @IsInt() @Min(1) SIMULATOR_REPLICAS = 1;
  /** Simulator time scale: 1 = calibrated real time, 0 = no sleeping. */
  @IsNumber() @Min(0) SIMULATOR_TIME_SCALE = 1;
  /** Simulator replies file (JSONL dialogues) for replays with real-length answers. */
  @IsOptional() @IsString() SIMULATOR_REPLIES_FILE?: string;
  /** Simulator: vLLM automatic prefix caching (`--enable-prefix-caching`); off for the `cache_off` baseline. */
  @Transform(toBoolean) @IsBoolean() SIMULATOR_PREFIX_CACHING = true;
  /** Simulator: the LMCache connector (CPU offload tier); off for the `cache_off` baseline. */
  @Transform(toBoolean) @IsBoolean() SIMULATOR_LMCACHE = true;
  /**
   * Simulator: measure the prompts' prefix-reuse ceiling (tokens each prompt shares with an earlier prompt +
   * answer; `GET /sim/prefix-limit`, read by `bench:multiturn` for `prefixReuseLimit`). Off by default: it
   * keeps prompts and answers in memory.
   */
  @Transform(toBoolean) @IsBoolean() SIMULATOR_PREFIX_LIMIT = false;
}
