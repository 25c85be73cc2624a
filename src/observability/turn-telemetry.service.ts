import { Injectable, Logger } from '@nestjs/common';
import { DomainError } from '../common/domain-error';
import { AppConfig } from '../config/app.config';
import { MetricsService, type TurnSource } from './metrics.service';
import { TracingService, type TurnTraceHandle } from './tracing.service';
import type { TurnTrace } from './turn-trace';

/** A turn as it starts. */
export interface TurnTelemetryStart {
  tenantId: string;
  /** The conversation; absent for a stateless `/v1/chat/completions` request. */
  conversationId?: string;
  /**
   * What is observed: `turn` (default) or `chat.completions` (the trace's name and, for metrics,
   * the `agent` label when no route names one).
   */
  kind?: 'turn' | 'chat.completions';
  /** The user message. Traced (maskable), logged only with LOG_MESSAGE_CONTENT. */
  content: string;
  /** True when the answer streams to the client (SSE). */
  streamed: boolean;
}

/**
 * What a finished turn reports; the agent graph's TurnOutput has this shape. Times in ms,
 * counts in tokens.
 */
export interface TurnOutcome {
  content: string;
  model?: string;
  replica?: string | null;
  finishReason?: string | null;
  usage: { promptTokens: number; completionTokens: number; cachedTokens: number };
  timings: { ttftMs: number; itlMs?: number; engineTtftMs?: number };
  route?: { agent: string };
  templateVersion?: string;
  cache?: {
    prefixReuse?: number;
    backendReusableTokens?: number;
    response?: { hit: boolean; type?: 'exact' | 'semantic'; similarity?: number };
  };
}

/** One turn being observed. */
export interface ObservedTurn {
  /** Pass to the agent graph (TurnInput.trace). */
  readonly trace: TurnTrace;
  /** The turn stored its answer. `totalMs`: whole turn; `messageId`: the stored answer. */
  succeed(
    outcome: TurnOutcome,
    details: {
      totalMs: number;
      messageId?: string;
      /** The turn's cost and the cost its cache layers avoided, USD (usage ledger). */
      cost?: { usd: number; avoidedUsd: number };
    },
  ): void;
  /** The turn failed with `error`. */
  fail(error: unknown): void;
}

/**
 * The one place a turn's telemetry is recorded: it opens the Langfuse trace when the turn starts
 * and, when it ends, ends the trace, records the turn's Prometheus metrics and logs one line.
 * ConversationsService calls it; nothing here imports a feature module. Never throws.
 */
@Injectable()
export class TurnTelemetryService {
  private readonly logger = new Logger('Turn');

  constructor(
    private readonly tracing: TracingService,
    private readonly metrics: MetricsService,
    private readonly config: AppConfig,
  ) {}

  begin(start: TurnTelemetryStart): ObservedTurn {
    const trace = this.tracing.startTurn({
      tenantId: start.tenantId,
      ...(start.conversationId ? { conversationId: start.conversationId } : {}),
      name: start.kind ?? 'turn',
      input: start.content,
      metadata: { streamed: start.streamed },
    });
    let finished = false;
    const once = (fn: () => void): void => {
      if (finished) return;
      finished = true;
      try {
        fn();
      } catch (e) {
        this.logger.warn({ err: e }, 'turn telemetry failed');
      }
    };
    return {
      trace,
      succeed: (outcome, details) => once(() => this.succeeded(start, trace, outcome, details)),
      fail: (error) => once(() => this.failed(start, trace, error)),
    };
  }

  private succeeded(
    start: TurnTelemetryStart,
    trace: TurnTraceHandle,
    outcome: TurnOutcome,
    details: Parameters<ObservedTurn['succeed']>[1],
  ): void {
    const response = outcome.cache?.response;
    const source: TurnSource = response?.hit ? (response.type ?? 'exact') : 'engine';
    const { promptTokens, cachedTokens, completionTokens } = outcome.usage;
    const prefixReuse = outcome.cache?.prefixReuse ?? (promptTokens > 0 ? cachedTokens / promptTokens : 0);
    const agent =
      outcome.route?.agent ?? (start.kind === 'chat.completions' ? 'chat-completions' : undefined);
    this.metrics.recordTurn({
      source,
      agent,
      replica: outcome.replica,
      promptTokens,
      cachedTokens,
      completionTokens,
      ttftMs: outcome.timings.ttftMs,
      itlMs: outcome.timings.itlMs,
      prefixReuse,
      totalMs: details.totalMs,
      tenantId: start.tenantId,
    });
    const summary = {
      source,
      agent,
      model: outcome.model,
      replica: outcome.replica ?? null,
      templateVersion: outcome.templateVersion,
      finishReason: outcome.finishReason ?? null,
      usage: outcome.usage,
      prefixReuse,
      ...(outcome.cache?.backendReusableTokens !== undefined
        ? { backendReusableTokens: outcome.cache.backendReusableTokens }
        : {}),
      ...(response ? { responseCache: response } : {}),
      timings: { ...outcome.timings, totalMs: details.totalMs },
      ...(details.messageId ? { messageId: details.messageId } : {}),
      ...(details.cost ? { cost: details.cost } : {}),
    };
    trace.finish({ output: outcome.content, metadata: summary, tags: agent ? [source, agent] : [source] });
    this.logger.log(
      {
        ...(start.conversationId ? { conversationId: start.conversationId } : { kind: start.kind }),
        traceId: trace.id,
        ...summary,
        ...(this.config.LOG_MESSAGE_CONTENT ? { content: start.content, answer: outcome.content } : {}),
      },
      'turn completed',
    );
  }

  private failed(start: TurnTelemetryStart, trace: TurnTraceHandle, error: unknown): void {
    const code = error instanceof DomainError ? error.code : 'InternalError';
    const replica =
      error instanceof DomainError && typeof error.extensions.replica === 'string'
        ? error.extensions.replica
        : undefined;
    // Domain error messages never carry message content (see DomainError); other errors are not shown.
    const detail = error instanceof DomainError ? error.message : 'The turn failed unexpectedly.';
    this.metrics.recordTurnError(code, replica);
    trace.finish({
      output: { error: code, detail },
      metadata: { error: { code, detail, ...(replica ? { replica } : {}) } },
      tags: ['error'],
    });
    const fields = {
      conversationId: start.conversationId,
      traceId: trace.id,
      code,
      ...(replica ? { replica } : {}),
      ...(this.config.LOG_MESSAGE_CONTENT ? { content: start.content } : {}),
    };
    if (code === 'RequestAborted') this.logger.log(fields, 'turn aborted by the client');
    else this.logger.warn(fields, `turn failed: ${code}`);
  }
}
