import { Transform } from 'class-transformer';
import {
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  MinLength,
} from 'class-validator';
import { toBoolean, toList } from './config.loader';

/** HTTP server, limits and secrets. */
export class AppConfig {
  /** Port the HTTP API listens on. */
  @IsInt() @Min(0) @Max(65535) PORT = 3000;
  /** Interface the HTTP API binds to. */
  @IsString() HOST = '0.0.0.0';
  @IsIn(['development', 'production', 'test']) NODE_ENV: 'development' | 'production' | 'test' =
    'development';
  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) LOG_LEVEL = 'info';
  /** `json` (one object a line) or `pretty`; unset = pretty in development, json otherwise. */
  @IsOptional() @IsIn(['json', 'pretty']) LOG_FORMAT?: 'json' | 'pretty';
  /** Log message content (prompts, answers). Off by default: content is customer data. */
  @Transform(toBoolean) @IsBoolean() LOG_MESSAGE_CONTENT = false;
  /**
   * Access-log successful probe and scrape requests (`/health/*`, `/metrics`). Off by default: a
   * kubelet and Prometheus call them every few seconds, which would bury the requests that matter.
   */
  @Transform(toBoolean) @IsBoolean() LOG_PROBE_REQUESTS = false;
  /** Largest accepted user message (a turn's content, each chat-completion message), in characters; longer is a 413. */
  @IsInt() @Min(1) MAX_MESSAGE_CHARS = 32_000;
  /** Largest accepted chat-completion prompt, all messages together, in characters; longer is a 413. */
  @IsInt() @Min(1) MAX_PROMPT_CHARS = 200_000;
  /** Largest accepted request body, in bytes. */
  @IsInt() @Min(1024) BODY_LIMIT_BYTES = 1_048_576;
  /**
   * Server secret for derived values (the per-tenant `cache_salt` HMAC). Unset: a random secret is
   * generated once and kept in DATA_DIR/server-secret, so salts survive restarts on one machine.
   * Set it explicitly (same value on every replica) in production.
   */
  @IsOptional() @IsString() @MinLength(16) SERVER_SECRET?: string;
  /** Seconds a validated API key is remembered in memory; bounds how long a revoked key keeps working. */
  @IsInt() @Min(0) API_KEY_CACHE_SECONDS = 5;
  /** Requests per minute allowed per API key (0 = unlimited). */
  @IsInt() @Min(0) RATE_LIMIT_PER_MINUTE = 0;
  /** Serve the OpenAPI document and Swagger UI at `/docs` and `/docs-json`. Unset = on unless NODE_ENV=production. */
  @IsOptional() @Transform(toBoolean) @IsBoolean() DOCS_ENABLED?: boolean;
  /**
   * Browser origins allowed to call the API (CORS), comma-separated (`https://app.example.com`), or `*` for
   * any. Empty = CORS off: no `Access-Control-*` headers, preflights are not answered as CORS.
   */
  @Transform(toList)
  @IsArray()
  @Matches(/^(\*|https?:\/\/[^\s/,]+)$/, { each: true, message: 'each entry must be * or an http(s) origin' })
  CORS_ORIGINS: string[] = [];
}
