import { Transform } from 'class-transformer';
import { IsArray, IsIn, IsInt, IsNumber, IsOptional, IsString, IsUrl, Min } from 'class-validator';
import { toList } from './config.loader';

/** Engine replicas (OpenAI-compatible, e.g. vLLM) or the in-process simulator. */
export class InferenceConfig {
  /**
   * Comma-separated OpenAI-compatible base URLs, one per replica (`http://vllm-0:8000/v1,...`).
   * Unset = start the engine simulator in-process (answers are synthetic).
   */
  @IsOptional()
  @Transform(toList)
  @IsArray()
  @IsUrl({ require_tld: false, require_protocol: true }, { each: true, message: 'each entry must be an http(s) URL' })
  INFERENCE_ENDPOINTS?: string[];
  /** Model name sent to the engine. Unset = the first model the engine lists. */
  @IsOptional() @IsString() INFERENCE_MODEL?: string;
  /** Bearer key for the engine (vLLM `--api-key`). */
  @IsOptional() @IsString() INFERENCE_API_KEY?: string;
  /** Whole-request timeout, ms. */
  @IsInt() @Min(100) INFERENCE_TIMEOUT_MS = 120_000;
  /** Time allowed until the first token, ms; past it the turn fails with a 504. */
  @IsInt() @Min(100) INFERENCE_FIRST_TOKEN_TIMEOUT_MS = 60_000;
  /** Context window of the model, tokens (vLLM `--max-model-len`). */
  @IsInt() @Min(256) INFERENCE_MAX_CONTEXT_TOKENS = 32_768;
  /** Default completion budget when a turn does not set `maxTokens`, tokens. */
  @IsInt() @Min(1) INFERENCE_DEFAULT_MAX_TOKENS = 512;
  /** Replica routing policy. */
  @IsIn(['round-robin', 'least-loaded', 'session', 'prefix'])
  ROUTER_POLICY: 'round-robin' | 'least-loaded' | 'session' | 'prefix' = 'session';
  /** Seconds between replica health probes. */
  @IsInt() @Min(1) ROUTER_HEALTH_INTERVAL_SECONDS = 5;
  /** Replicas of the in-process simulator (only when INFERENCE_ENDPOINTS is unset). */
  @IsInt() @Min(1) SIMULATOR_REPLICAS = 1;
  /** Simulator time scale: 1 = calibrated real time, 0 = no sleeping. */
  @IsNumber() @Min(0) SIMULATOR_TIME_SCALE = 1;
  /** Simulator replies file (JSONL dialogues) for replays with real-length answers. */
  @IsOptional() @IsString() SIMULATOR_REPLIES_FILE?: string;
}
