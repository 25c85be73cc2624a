import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { Langfuse, type LangfuseGenerationClient, type LangfuseTraceClient } from 'langfuse';
import { LangfuseConfig } from '../config/langfuse.config';
import { MetricsService } from './metrics.service';
import { NOOP_TURN_TRACE, type TraceGeneration, type TraceSpan, type TurnTrace } from './turn-trace';

/** What a turn's trace starts with. */
export interface TurnTraceStart {
  tenantId: string;
  /** The conversation (Langfuse session); absent for stateless requests (`/v1/chat/completions`). */
  conversationId?: string;
  /** Trace name: `turn` (default), `chat.completions`, `embeddings`. */
  name?: string;
  /** The user message, or the texts to embed (masked when LANGFUSE_MASK_CONTENT is on). */
  input: string | readonly string[];
  metadata?: Record<string, unknown>;
}

/** A turn's trace as its owner sees it: the TurnTrace seam plus the final update. */
export interface TurnTraceHandle extends TurnTrace {
  /** Ends the trace: its output, metadata (merged), tags, and whether the turn failed. */
  finish(result: { output?: unknown; metadata?: Record<string, unknown>; tags?: string[] }): void;
}

const NOOP_HANDLE: TurnTraceHandle = { ...NOOP_TURN_TRACE, finish: () => undefined };
const noopSpan: TraceSpan = { end: () => undefined };
const noopGeneration: TraceGeneration = { firstToken: () => undefined, end: () => undefined };

/**
 * Replaces every string in `value` with `[masked: N chars]`, keeping its shape, numbers and
 * booleans. Used as the Langfuse SDK's `mask` (it applies to every event's `input` and `output`).
 */
export function maskContent(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return `[masked: ${value.length} chars]`;
  if (value === null || typeof value !== 'object') return value;
  if (depth > 20) return '[masked]';
  if (Array.isArray(value)) return value.map((v) => maskContent(v, depth + 1));
  if (value instanceof Date) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskContent(v, depth + 1)]));
}

/**
 * Langfuse tracing: one trace per turn (`sessionId` = conversation id, `userId` = tenant id), spans
 * for the steps the agent graph records, a generation per engine call with usage (cached tokens
 * included) and `completionStartTime` at the first token.
 *
 * Off unless LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY are set. Recording never throws and never
 * waits: events go to the SDK's in-memory queue and are sent in the background. The queue is bounded
 * by LANGFUSE_MAX_QUEUE_EVENTS (queued + being sent); past it events are dropped and counted in
 * `kvchat_langfuse_events_total{outcome="dropped"}`. Shutdown waits at most LANGFUSE_SHUTDOWN_TIMEOUT_MS.
 */
@Injectable()
export class TracingService implements OnApplicationShutdown {
  private readonly logger = new Logger(TracingService.name);
  private readonly client: Langfuse | null;
  /** Events the SDK queued, and events it finished with (sent or failed): their difference is the queue. */
  private queued = 0;
  private settled = 0;
  private lastBatchFailed = false;
  private lastWarnAt = 0;

  constructor(
    private readonly config: LangfuseConfig,
    private readonly metrics: MetricsService,
  ) {
    this.metrics.gauge({
      name: 'kvchat_langfuse_queue_events',
      help: 'Langfuse events queued or being sent (bounded by LANGFUSE_MAX_QUEUE_EVENTS).',
      labelNames: [],
      collect: (gauge) => gauge.set(this.outstanding),
    });
    if (!config.LANGFUSE_PUBLIC_KEY || !config.LANGFUSE_SECRET_KEY) {
      this.client = null;
      return;
    }
    this.client = new Langfuse({
      publicKey: config.LANGFUSE_PUBLIC_KEY,
      secretKey: config.LANGFUSE_SECRET_KEY,
      baseUrl: config.LANGFUSE_BASEURL,
      flushAt: config.LANGFUSE_FLUSH_AT,
      flushInterval: config.LANGFUSE_FLUSH_INTERVAL_MS,
      requestTimeout: config.LANGFUSE_REQUEST_TIMEOUT_MS,
      fetchRetryCount: config.LANGFUSE_RETRY_COUNT,
      fetchRetryDelay: config.LANGFUSE_RETRY_DELAY_MS,
      sdkIntegration: 'kvchat',
      ...(config.LANGFUSE_ENVIRONMENT ? { environment: config.LANGFUSE_ENVIRONMENT } : {}),
      ...(config.LANGFUSE_MASK_CONTENT ? { mask: ({ data }: { data: unknown }) => maskContent(data) } : {}),
    });
    for (const type of [
      'trace-create',
      'span-create',
      'span-update',
      'generation-create',
      'generation-update',
    ]) {
      this.client.on(type, () => {
        this.queued++;
      });
    }
    // The SDK reports a failed batch (after its retries) as a `warning` carrying the Error, then
    // `flush` with the batch's items; a sent batch only as `flush`.
    this.client.on('warning', (payload: unknown) => {
      if (payload instanceof Error) {
        this.lastBatchFailed = true;
        this.warn(`Langfuse ingestion failed: ${payload.message}`);
      }
    });
    this.client.on('flush', (items: unknown) => {
      const count = Array.isArray(items) ? items.length : 0;
      this.settled += count;
      this.metrics.recordLangfuseEvents(this.lastBatchFailed ? 'failed' : 'sent', count);
      this.lastBatchFailed = false;
    });
    this.logger.log(
      `Langfuse tracing on: ${config.LANGFUSE_BASEURL}${config.LANGFUSE_MASK_CONTENT ? ' (content masked)' : ''}`,
    );
  }

  /** True when traces are sent to Langfuse. */
  get enabled(): boolean {
    return this.client !== null;
  }

  /** Events queued or being sent right now. */
  get outstanding(): number {
    return Math.max(0, this.queued - this.settled);
  }

  /** Starts the trace of one turn; a no-op trace when tracing is off. Never throws. */
  startTurn(start: TurnTraceStart): TurnTraceHandle {
    if (!this.client) return NOOP_HANDLE;
    const client = this.client;
    const metadata = {
      ...(start.conversationId ? { conversationId: start.conversationId } : {}),
      tenantId: start.tenantId,
      ...start.metadata,
    };
    const trace = this.record(() =>
      client.trace({
        name: start.name ?? 'turn',
        ...(start.conversationId ? { sessionId: start.conversationId } : {}),
        userId: start.tenantId,
        input: start.input,
        metadata,
      }),
    );
    if (!trace) return NOOP_HANDLE;
    return new LangfuseTurnTrace(trace, this, metadata);
  }

  /**
   * Runs one SDK call if the queue has room, else counts a dropped event. Never throws.
   * @returns the call's result, or undefined when dropped or failed
   */
  record<T>(call: () => T): T | undefined {
    if (this.outstanding >= this.config.LANGFUSE_MAX_QUEUE_EVENTS) {
      this.metrics.recordLangfuseEvents('dropped');
      return undefined;
    }
    try {
      return call();
    } catch (e) {
      this.warn(`Langfuse event not recorded: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    }
  }

  /** Sends everything queued now (tests, before a planned stop). Resolves even if sending fails. */
  async flush(): Promise<void> {
    await this.client?.flushAsync();
  }

  async onApplicationShutdown(): Promise<void> {
    if (!this.client) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), this.config.LANGFUSE_SHUTDOWN_TIMEOUT_MS);
      timer.unref();
    });
    const done = await Promise.race([this.client.shutdownAsync().then(() => false), timedOut]);
    clearTimeout(timer);
    if (done) {
      this.logger.warn(
        `Langfuse did not take the last ${this.outstanding} events within ${this.config.LANGFUSE_SHUTDOWN_TIMEOUT_MS} ms; they are lost.`,
      );
    }
  }

  /** Warns at most once a minute: a Langfuse outage must not flood the logs. */
  private warn(message: string): void {
    const now = Date.now();
    if (now - this.lastWarnAt < 60_000) return;
    this.lastWarnAt = now;
    this.logger.warn(message);
  }
}

/** A turn's trace in Langfuse. Every call goes through TracingService.record (bounded, never throws). */
class LangfuseTurnTrace implements TurnTraceHandle {
  constructor(
    private readonly trace: LangfuseTraceClient,
    private readonly tracing: TracingService,
    /** The trace's metadata at its start, repeated in the final update so it reads whole either way. */
    private readonly startMetadata: Record<string, unknown>,
  ) {}

  get id(): string {
    return this.trace.id;
  }

  span(name: string, input?: unknown, metadata?: Record<string, unknown>): TraceSpan {
    const span = this.tracing.record(() => this.trace.span({ name, input, metadata }));
    if (!span) return noopSpan;
    return {
      end: (output, endMetadata) => {
        this.tracing.record(() =>
          span.end({ output, ...(endMetadata ? { metadata: { ...metadata, ...endMetadata } } : {}) }),
        );
      },
    };
  }

  generation(name: string, input: unknown, metadata?: Record<string, unknown>): TraceGeneration {
    const generation = this.tracing.record(() => this.trace.generation({ name, input, metadata }));
    return generation ? new LangfuseTurnGeneration(generation, this.tracing, metadata) : noopGeneration;
  }

  end(output?: unknown, metadata?: Record<string, unknown>): void {
    this.finish({ output, metadata });
  }

  finish(result: { output?: unknown; metadata?: Record<string, unknown>; tags?: string[] }): void {
    this.tracing.record(() =>
      this.trace.update({
        output: result.output,
        metadata: { ...this.startMetadata, ...result.metadata },
        ...(result.tags ? { tags: result.tags } : {}),
      }),
    );
  }
}

/** An engine call: started with its prompt, updated at the first token, ended with usage. */
class LangfuseTurnGeneration implements TraceGeneration {
  private firstTokenAt?: Date;

  constructor(
    private readonly generation: LangfuseGenerationClient,
    private readonly tracing: TracingService,
    private readonly metadata: Record<string, unknown> | undefined,
  ) {}

  firstToken(at: Date = new Date()): void {
    this.firstTokenAt ??= at;
  }

  end(result: Parameters<TraceGeneration['end']>[0]): void {
    const usage = result.usage;
    const generation = this.generation;
    this.tracing.record(() =>
      generation.end({
        output: result.output,
        ...(result.model ? { model: result.model } : {}),
        ...(this.firstTokenAt ? { completionStartTime: this.firstTokenAt } : {}),
        ...(usage
          ? {
              // Langfuse's OpenAI mapping: `input` is the uncached prompt tokens, `input_cached_tokens`
              // the ones read from the prefix cache; together they are usage.prompt_tokens.
              usageDetails: {
                input: Math.max(0, usage.promptTokens - usage.cachedTokens),
                input_cached_tokens: usage.cachedTokens,
                output: usage.completionTokens,
                total: usage.promptTokens + usage.completionTokens,
              },
            }
          : {}),
        ...(result.cost
          ? {
              costDetails: {
                input: result.cost.input,
                input_cached_tokens: result.cost.inputCached,
                output: result.cost.output,
                total: result.cost.total,
              },
            }
          : {}),
        metadata: { ...this.metadata, ...result.metadata, ...(usage ? { usage } : {}) },
        ...(result.error ? { level: 'ERROR' as const, statusMessage: result.error } : {}),
      }),
    );
  }
}
