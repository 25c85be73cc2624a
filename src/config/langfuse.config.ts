import { Transform } from 'class-transformer';
import { IsBoolean, IsInt, IsOptional, IsString, IsUrl, Max, Min, ValidateIf } from 'class-validator';
import { toBoolean } from './config.loader';

/**
 * Langfuse tracing (one trace per turn). Off unless both keys are set; a Langfuse outage never
 * fails or slows a turn: events wait in a bounded queue and are dropped (and counted) when it is full.
 */
export class LangfuseConfig {
  /** Project public key (`pk-lf-...`). Tracing is off unless this and LANGFUSE_SECRET_KEY are set. */
  @ValidateIf((c: LangfuseConfig) => c.LANGFUSE_SECRET_KEY !== undefined)
  @IsString({ message: 'must be set when LANGFUSE_SECRET_KEY is set' })
  LANGFUSE_PUBLIC_KEY?: string;
  /** Project secret key (`sk-lf-...`). Never logged. */
  @ValidateIf((c: LangfuseConfig) => c.LANGFUSE_PUBLIC_KEY !== undefined)
  @IsString({ message: 'must be set when LANGFUSE_PUBLIC_KEY is set' })
  LANGFUSE_SECRET_KEY?: string;
  /** Langfuse host (cloud or self-hosted). */
  @IsUrl({ require_tld: false, require_protocol: true }, { message: 'must be an http(s) URL' })
  LANGFUSE_BASEURL = 'https://cloud.langfuse.com';
  /** Events per ingestion batch; a batch is sent as soon as this many are queued. */
  @IsInt() @Min(1) @Max(1000) LANGFUSE_FLUSH_AT = 15;
  /** Longest an event waits before its batch is sent, ms. */
  @IsInt() @Min(10) LANGFUSE_FLUSH_INTERVAL_MS = 5000;
  /** Timeout of one ingestion request, ms. */
  @IsInt() @Min(100) LANGFUSE_REQUEST_TIMEOUT_MS = 5000;
  /** Retries of a failed ingestion request (the SDK waits LANGFUSE_RETRY_DELAY_MS between them). */
  @IsInt() @Min(0) @Max(10) LANGFUSE_RETRY_COUNT = 2;
  /** Delay between retries of an ingestion request, ms. */
  @IsInt() @Min(0) LANGFUSE_RETRY_DELAY_MS = 1000;
  /**
   * Events queued or being sent, at most. Past it new events are dropped and counted in
   * `kvchat_langfuse_events_total{outcome="dropped"}`, so a slow or dead Langfuse costs bounded memory.
   */
  @IsInt() @Min(1) LANGFUSE_MAX_QUEUE_EVENTS = 10_000;
  /** Longest shutdown waits for the last events to be sent, ms. */
  @IsInt() @Min(0) LANGFUSE_SHUTDOWN_TIMEOUT_MS = 5000;
  /**
   * Replace every string in the inputs and outputs of traces, spans and generations (the messages,
   * the prompt, the answer) with `[masked: N chars]`; numbers, usage and metadata are kept.
   */
  @Transform(toBoolean) @IsBoolean() LANGFUSE_MASK_CONTENT = false;
  /** Langfuse `environment` of every trace (lowercase, e.g. `production`). Unset = the SDK default. */
  @IsOptional() @IsString() LANGFUSE_ENVIRONMENT?: string;
}
