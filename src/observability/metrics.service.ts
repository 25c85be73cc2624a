import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { MetricsConfig } from '../config/metrics.config';
import { BoundedLabel, safeName } from './metric-labels';

/** Result of one response-cache lookup, as counted in `kvchat_response_cache_lookups_total{result}`. */
export type ResponseCacheLookupResult = 'exact' | 'semantic' | 'miss' | 'guard_rejected';
export const RESPONSE_CACHE_LOOKUP_RESULTS: readonly ResponseCacheLookupResult[] = [
  'exact',
  'semantic',
  'miss',
  'guard_rejected',
];

/** Where a turn's answer came from. */
export type TurnSource = 'engine' | 'exact' | 'semantic';

/** What one completed turn contributes to the metrics (times in ms, counts in tokens). */
export interface TurnSample {
  source: TurnSource;
  agent?: string;
  /** Engine replica id (its base URL); absent for a response-cache hit. */
  replica?: string | null;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  /** Backend-measured time to first token, ms. */
  ttftMs: number;
  /** Mean inter-token latency of the engine stream, ms (0 with fewer than two tokens). */
  itlMs?: number;
  /** Engine-reported cached / prompt tokens, 0..1. */
  prefixReuse: number;
  /** Whole turn, ms. */
  totalMs: number;
  tenantId?: string;
}

/** Outcome of a batch of Langfuse events. */
export type LangfuseEventOutcome = 'sent' | 'failed' | 'dropped';

/** vLLM's TTFT buckets (`vllm:time_to_first_token_seconds`), seconds. */
const TTFT_BUCKETS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80,
];
/** vLLM's inter-token latency buckets (`vllm:time_per_output_token_seconds`) below 10 ms added for fast engines, seconds. */
const ITL_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5,
];
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const TURN_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const RATIO_BUCKETS = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1];
const SIMILARITY_BUCKETS = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 1];

/**
 * Prometheus metrics of one kvchat instance, served at `GET /metrics`. Every label set is bounded:
 * routes are Fastify route patterns, replicas come from configuration, agents and error codes are
 * capped, and tenants appear only with METRICS_TENANT_LABEL (as ids, never names).
 *
 * Other modules record through the `record*` methods; metrics read at scrape time (replica health,
 * queue depth) register gauges on `registry` (see the collectors beside this file).
 */
@Injectable()
export class MetricsService {
  /** This instance's registry (not prom-client's global one, so several apps can live in one process). */
  readonly registry = new Registry();
  private readonly tenantLabel: boolean;
  private readonly agents = new BoundedLabel(32);
  private readonly codes = new BoundedLabel(64);
  private readonly replicas = new BoundedLabel(64);
  private readonly routes = new BoundedLabel(256);
  private readonly tenants = new BoundedLabel(1000);

  private readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  private readonly turns: Counter<'source' | 'agent' | 'tenant'>;
  private readonly turnErrors: Counter<'code'>;
  private readonly engineErrors: Counter<'replica' | 'code'>;
  private readonly turnDuration: Histogram<'source'>;
  private readonly ttft: Histogram<'replica'>;
  private readonly itl: Histogram<'replica'>;
  private readonly promptTokens: Counter<'replica' | 'tenant'>;
  private readonly cachedTokens: Counter<'replica' | 'tenant'>;
  private readonly completionTokens: Counter<'replica' | 'tenant'>;
  private readonly prefixReuse: Histogram;
  private readonly responseCacheLookups: Counter<'result'>;
  private readonly responseCacheSimilarity: Histogram<'result'>;
  private readonly langfuseEvents: Counter<'outcome'>;
  private readonly embeddingInputs: Counter<'source' | 'tenant'>;
  private readonly embeddingTokens: Counter<'tenant'>;

  constructor(config: MetricsConfig) {
    this.tenantLabel = config.METRICS_TENANT_LABEL;
    const registers = [this.registry];
    const tenant = this.tenantLabel ? (['tenant'] as const) : ([] as const);
    if (config.METRICS_PROCESS) collectDefaultMetrics({ register: this.registry });

    this.httpDuration = new Histogram({
      name: 'kvchat_http_request_duration_seconds',
      help: 'HTTP request duration by route pattern (not URL), method and status code, seconds.',
      labelNames: ['method', 'route', 'status_code'],
      buckets: HTTP_BUCKETS,
      registers,
    });
    this.turns = new Counter({
      name: 'kvchat_turns_total',
      help: 'Completed turns by answer source (engine, exact or semantic response-cache hit) and agent.',
      labelNames: ['source', 'agent', ...tenant],
      registers,
    });
    this.turnErrors = new Counter({
      name: 'kvchat_turn_errors_total',
      help: 'Failed turns by error code (EngineUnavailable, EngineTimeout, RequestAborted, ...).',
      labelNames: ['code'],
      registers,
    });
    this.engineErrors = new Counter({
      name: 'kvchat_engine_errors_total',
      help: 'Failed turns whose error names an engine replica, by replica and error code.',
      labelNames: ['replica', 'code'],
      registers,
    });
    this.turnDuration = new Histogram({
      name: 'kvchat_turn_duration_seconds',
      help: 'Whole turn, from receiving it to storing the answer, by answer source, seconds.',
      labelNames: ['source'],
      buckets: TURN_BUCKETS,
      registers,
    });
    this.ttft = new Histogram({
      name: 'kvchat_ttft_seconds',
      help: 'Time to first token of engine calls, measured by the backend, by replica, seconds.',
      labelNames: ['replica'],
      buckets: TTFT_BUCKETS,
      registers,
    });
    this.itl = new Histogram({
      name: 'kvchat_itl_seconds',
      help: 'Mean inter-token latency of each engine call (calls with at least two tokens), by replica, seconds.',
      labelNames: ['replica'],
      buckets: ITL_BUCKETS,
      registers,
    });
    this.promptTokens = new Counter({
      name: 'kvchat_prompt_tokens_total',
      help: 'Prompt tokens sent to the engine (usage.prompt_tokens), by replica.',
      labelNames: ['replica', ...tenant],
      registers,
    });
    this.cachedTokens = new Counter({
      name: 'kvchat_cached_tokens_total',
      help: 'Prompt tokens the engine served from its prefix cache (usage.prompt_tokens_details.cached_tokens), by replica.',
      labelNames: ['replica', ...tenant],
      registers,
    });
    this.completionTokens = new Counter({
      name: 'kvchat_completion_tokens_total',
      help: 'Completion tokens generated by the engine (usage.completion_tokens), by replica.',
      labelNames: ['replica', ...tenant],
      registers,
    });
    this.prefixReuse = new Histogram({
      name: 'kvchat_prefix_reuse_ratio',
      help: 'Per engine call: cached prompt tokens / prompt tokens (0..1).',
      buckets: RATIO_BUCKETS,
      registers,
    });
    this.responseCacheLookups = new Counter({
      name: 'kvchat_response_cache_lookups_total',
      help: 'Response-cache lookups by result: exact hit, semantic hit, miss, or a semantic candidate a guard rejected.',
      labelNames: ['result'],
      registers,
    });
    for (const result of RESPONSE_CACHE_LOOKUP_RESULTS) this.responseCacheLookups.inc({ result }, 0);
    this.responseCacheSimilarity = new Histogram({
      name: 'kvchat_response_cache_similarity',
      help: 'Similarity of the best semantic candidate of a lookup, by lookup result (cosine, 0..1).',
      labelNames: ['result'],
      buckets: SIMILARITY_BUCKETS,
      registers,
    });
    this.langfuseEvents = new Counter({
      name: 'kvchat_langfuse_events_total',
      help: 'Langfuse events by outcome: sent, failed (delivery failed after retries) or dropped (queue full).',
      labelNames: ['outcome'],
      registers,
    });
    for (const outcome of ['sent', 'failed', 'dropped'] as const) this.langfuseEvents.inc({ outcome }, 0);
    this.embeddingInputs = new Counter({
      name: 'kvchat_embedding_inputs_total',
      help: 'Texts embedded through /v1/embeddings, by source: the embeddings cache or the engine.',
      labelNames: ['source', ...tenant],
      registers,
    });
    this.embeddingTokens = new Counter({
      name: 'kvchat_embedding_tokens_total',
      help: 'Input tokens the engine embedded for /v1/embeddings (usage.prompt_tokens; cache hits add none).',
      labelNames: [...tenant],
      registers,
    });
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /**
   * One finished HTTP request. `route` is the route pattern (`/v1/conversations/:id/turns`), or
   * undefined for a request no route matched.
   */
  recordHttpRequest(method: string, route: string | undefined, statusCode: number, seconds: number): void {
    this.httpDuration.observe(
      { method, route: route ? this.routes.value(route) : 'unmatched', status_code: String(statusCode) },
      seconds,
    );
  }

  /** One completed turn. Engine figures are recorded only when the engine answered. */
  recordTurn(sample: TurnSample): void {
    const tenant = this.tenantLabel ? { tenant: this.tenants.value(sample.tenantId) } : {};
    this.turns.inc({
      source: sample.source,
      agent: this.agents.value(
        sample.agent === undefined ? undefined : (safeName(sample.agent) ?? 'invalid'),
      ),
      ...tenant,
    });
    this.turnDuration.observe({ source: sample.source }, sample.totalMs / 1000);
    if (sample.source !== 'engine') return;
    const replica = this.replicas.value(sample.replica);
    this.ttft.observe({ replica }, sample.ttftMs / 1000);
    if (sample.completionTokens > 1 && sample.itlMs !== undefined)
      this.itl.observe({ replica }, sample.itlMs / 1000);
    this.promptTokens.inc({ replica, ...tenant }, sample.promptTokens);
    this.cachedTokens.inc({ replica, ...tenant }, sample.cachedTokens);
    this.completionTokens.inc({ replica, ...tenant }, sample.completionTokens);
    this.prefixReuse.observe(Math.min(1, Math.max(0, sample.prefixReuse)));
  }

  /** One `/v1/embeddings` request: texts served from the embeddings cache and by the engine, engine tokens. */
  recordEmbeddings(sample: {
    tenantId: string;
    cachedInputs: number;
    engineInputs: number;
    promptTokens: number;
  }): void {
    const tenant = this.tenantLabel ? { tenant: this.tenants.value(sample.tenantId) } : {};
    this.embeddingInputs.inc({ source: 'cache', ...tenant }, sample.cachedInputs);
    this.embeddingInputs.inc({ source: 'engine', ...tenant }, sample.engineInputs);
    this.embeddingTokens.inc(tenant, sample.promptTokens);
  }

  /** One failed turn; `replica` when the error names the replica that failed. */
  recordTurnError(code: string, replica?: string): void {
    const label = this.codes.value(safeName(code) ?? 'InternalError');
    this.turnErrors.inc({ code: label });
    if (replica) this.engineErrors.inc({ replica: this.replicas.value(replica), code: label });
  }

  /**
   * One response-cache lookup. Call it once per lookup, where the lookup decides (the response
   * cache), with the best semantic candidate's similarity when there was one.
   */
  recordResponseCacheLookup(result: ResponseCacheLookupResult, similarity?: number): void {
    this.responseCacheLookups.inc({ result });
    if (similarity !== undefined && Number.isFinite(similarity)) {
      this.responseCacheSimilarity.observe({ result }, similarity);
    }
  }

  /** `count` Langfuse events reached `outcome`. */
  recordLangfuseEvents(outcome: LangfuseEventOutcome, count = 1): void {
    if (count > 0) this.langfuseEvents.inc({ outcome }, count);
  }

  /** Label value for a replica id, bounded like every replica label here. */
  replicaLabel(replica: string): string {
    return this.replicas.value(replica);
  }

  /**
   * Registers a counter whose values are read at scrape time from a tally another layer keeps (a running
   * total that only grows, so it is a Prometheus counter: use rate()/increase()).
   */
  counterOf<L extends string>(options: {
    name: string;
    help: string;
    labelNames?: readonly L[];
    read: () => { labels: Partial<Record<L, string>>; value: number }[];
  }): Counter<L> {
    const { read } = options;
    return new Counter<L>({
      name: options.name,
      help: options.help,
      labelNames: options.labelNames ?? [],
      registers: [this.registry],
      collect(this: Counter<L>) {
        this.reset();
        for (const { labels, value } of read()) this.inc(labels, value);
      },
    });
  }

  /** Registers a gauge whose values are read at scrape time. */
  gauge<L extends string>(options: {
    name: string;
    help: string;
    labelNames: readonly L[];
    collect: (gauge: Gauge<L>) => void | Promise<void>;
  }): Gauge<L> {
    const { collect } = options;
    return new Gauge<L>({
      name: options.name,
      help: options.help,
      labelNames: options.labelNames,
      registers: [this.registry],
      collect(this: Gauge<L>) {
        return collect(this);
      },
    });
  }
}
