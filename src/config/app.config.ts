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
  /**
   * Length of the listen socket's accept queue (`listen(2)` backlog): connections the kernel holds while the
   * process is busy. The kernel caps it at `net.core.somaxconn` (4096 on Linux ≥ 5.4). Past it, new
   * connections are refused or dropped, which clients see as timeouts rather than a 503; admission control
   * (TURNS_MAX_*) sheds turns with a 503 instead, so keep this above the connections a burst opens.
   */
  @IsInt() @Min(1) @Max(65535) HTTP_LISTEN_BACKLOG: number = 511;
  /**
   * How long an idle keep-alive connection stays open, ms (Node's `server.keepAliveTimeout`). Keep it above
   * the idle timeout of the load balancer in front (60 s on AWS ALB and nginx `keepalive_timeout` upstreams),
   * so the balancer, not kvchat, closes idle connections and never reuses one kvchat just closed.
   */
  @IsInt() @Min(0) HTTP_KEEP_ALIVE_TIMEOUT_MS: number = 72_000;
  /**
   * Longest a streamed token after the first waits to share a socket write with the tokens after it, ms
   * (Server-Sent Events of `POST /v1/conversations/:id/turns` and `POST /v1/chat/completions`). 0 writes
   * every event-loop iteration's events at once, about one write per token at the engine's pace. The first
   * token and every other event (citations, the final turn, an error) are never held, so TTFT and the order
   * of events do not change. A write is the largest cost of streaming a long answer (docs/scaling.md).
   */
  @IsInt() @Min(0) @Max(1000) SSE_FLUSH_INTERVAL_MS: number = 0;
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
