import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics of one simulator instance, under vLLM's and LMCache's names, in a registry of
 * its own (several simulators in one process never collide). Every series carries `model_name`,
 * like vLLM's.
 *
 * Names: vLLM v1 metrics (https://docs.vllm.ai/en/latest/design/metrics/, https://docs.vllm.ai/en/stable/usage/metrics/) and
 * LMCache's metrics reference (https://docs.lmcache.ai/production/observability/metrics.html).
 * Python's prometheus_client exposes a counter `vllm:prefix_cache_queries` as the sample
 * `vllm:prefix_cache_queries_total`; prom-client does not add the suffix, so counters are declared
 * with `_total` here and the samples read exactly as a real vLLM's do.
 *
 * Units follow vLLM: prefix cache queries and hits count TOKENS (queries += prompt tokens, hits +=
 * tokens found in the GPU prefix cache); latencies are seconds.
 */
export class SimulatorMetrics {
  readonly registry = new Registry();

  // vLLM: scheduler state (gauges are refreshed from the engine at scrape time)
  readonly numRequestsRunning: Gauge;
  readonly numRequestsWaiting: Gauge;
  readonly kvCacheUsagePerc: Gauge;
  // vLLM: prefix cache and tokens
  readonly prefixCacheQueries: Counter;
  readonly prefixCacheHits: Counter;
  readonly promptTokens: Counter;
  readonly generationTokens: Counter;
  readonly requestSuccess: Counter<'finished_reason'>;
  // vLLM's HTTP server (prometheus-fastapi-instrumentator): every request by route
  readonly httpRequests: Counter<'handler' | 'method' | 'status'>;
  // vLLM: request histograms
  readonly timeToFirstToken: Histogram;
  readonly interTokenLatency: Histogram;
  readonly requestTimePerOutputToken: Histogram;
  readonly e2eRequestLatency: Histogram;
  readonly requestQueueTime: Histogram;
  readonly requestPrefillTime: Histogram;
  readonly requestDecodeTime: Histogram;
  readonly requestPromptTokens: Histogram;
  readonly requestGenerationTokens: Histogram;
  // LMCache
  readonly lmcacheLookupRequests: Counter;
  readonly lmcacheLookupTokens: Counter;
  readonly lmcacheLookupHits: Counter;
  readonly lmcacheRetrieveRequests: Counter;
  readonly lmcacheRequestedTokens: Counter;
  readonly lmcacheHitTokens: Counter;
  readonly lmcacheStoreRequests: Counter;
  readonly lmcacheStoredTokens: Counter;
  readonly lmcacheVllmHitTokens: Counter;
  readonly lmcachePromptTokens: Counter;
  readonly lmcacheRemoteReadRequests: Counter;
  readonly lmcacheRemoteWriteRequests: Counter;
  readonly lmcacheLocalCpuEvictCount: Counter;
  readonly lmcacheLocalCacheUsage: Gauge;

  constructor(
    modelName: string,
    cacheConfig: { blockSize: number; numGpuBlocks: number; enablePrefixCaching: boolean },
    sample: () => {
      running: number;
      waiting: number;
      kvUsage: number;
      lmcacheLocalBytes: number;
      lmcacheCpuEvictions: number;
    },
  ) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ model_name: modelName });

    this.numRequestsRunning = new Gauge({
      name: 'vllm:num_requests_running',
      help: 'Number of requests in model execution batches.',
      registers,
      collect() {
        this.set(sample().running);
      },
    });
    this.numRequestsWaiting = new Gauge({
      name: 'vllm:num_requests_waiting',
      help: 'Number of requests waiting to be processed.',
      registers,
      collect() {
        this.set(sample().waiting);
      },
    });
    this.kvCacheUsagePerc = new Gauge({
      name: 'vllm:kv_cache_usage_perc',
      help: 'KV-cache usage. 1 means 100 percent usage.',
      registers,
      collect() {
        this.set(sample().kvUsage);
      },
    });
    const info = new Gauge({
      name: 'vllm:cache_config_info',
      help: 'Information of the LLMEngine CacheConfig (engine simulator).',
      labelNames: ['block_size', 'num_gpu_blocks', 'enable_prefix_caching', 'simulator'],
      registers,
    });
    info.set(
      {
        block_size: String(cacheConfig.blockSize),
        num_gpu_blocks: String(cacheConfig.numGpuBlocks),
        enable_prefix_caching: cacheConfig.enablePrefixCaching ? 'True' : 'False',
        simulator: 'true',
      },
      1,
    );

    const counter = (name: string, help: string): Counter => new Counter({ name, help, registers });
    this.prefixCacheQueries = counter(
      'vllm:prefix_cache_queries_total',
      'Prefix cache queries, in terms of number of queried tokens.',
    );
    this.prefixCacheHits = counter(
      'vllm:prefix_cache_hits_total',
      'Prefix cache hits, in terms of number of cached tokens.',
    );
    this.promptTokens = counter('vllm:prompt_tokens_total', 'Number of prefill tokens processed.');
    this.generationTokens = counter('vllm:generation_tokens_total', 'Number of generation tokens processed.');
    this.requestSuccess = new Counter({
      name: 'vllm:request_success_total',
      help: 'Count of successfully processed requests.',
      labelNames: ['finished_reason'],
      registers,
    });

    this.httpRequests = new Counter({
      name: 'http_requests_total',
      help: 'Total number of requests by method, status and handler.',
      labelNames: ['handler', 'method', 'status'],
      registers,
    });

    const histogram = (name: string, help: string, buckets: number[]): Histogram =>
      new Histogram({ name, help, buckets, registers });
    this.timeToFirstToken = histogram(
      'vllm:time_to_first_token_seconds',
      'Histogram of time to first token in seconds.',
      [
        0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
        40.0, 80.0, 160.0, 640.0, 2560.0,
      ],
    );
    const itlBuckets = [
      0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0,
      80.0,
    ];
    this.interTokenLatency = histogram(
      'vllm:inter_token_latency_seconds',
      'Histogram of inter-token latency in seconds.',
      itlBuckets,
    );
    this.requestTimePerOutputToken = histogram(
      'vllm:request_time_per_output_token_seconds',
      'Histogram of time_per_output_token_seconds per request.',
      itlBuckets,
    );
    const requestBuckets = [
      0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0,
      960.0, 1920.0, 7680.0,
    ];
    this.e2eRequestLatency = histogram(
      'vllm:e2e_request_latency_seconds',
      'Histogram of e2e request latency in seconds.',
      requestBuckets,
    );
    this.requestQueueTime = histogram(
      'vllm:request_queue_time_seconds',
      'Histogram of time spent in WAITING phase for request.',
      requestBuckets,
    );
    this.requestPrefillTime = histogram(
      'vllm:request_prefill_time_seconds',
      'Histogram of time spent in PREFILL phase for request.',
      requestBuckets,
    );
    this.requestDecodeTime = histogram(
      'vllm:request_decode_time_seconds',
      'Histogram of time spent in DECODE phase for request.',
      requestBuckets,
    );
    const tokenBuckets = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];
    this.requestPromptTokens = histogram(
      'vllm:request_prompt_tokens',
      'Number of prefill tokens processed.',
      tokenBuckets,
    );
    this.requestGenerationTokens = histogram(
      'vllm:request_generation_tokens',
      'Number of generation tokens processed.',
      tokenBuckets,
    );

    this.lmcacheLookupRequests = counter(
      'lmcache:num_lookup_requests_total',
      'Total number of lookup requests.',
    );
    this.lmcacheLookupTokens = counter(
      'lmcache:num_lookup_tokens_total',
      'Total number of tokens requested in lookup operations.',
    );
    this.lmcacheLookupHits = counter(
      'lmcache:num_lookup_hits_total',
      'Total number of tokens hit in lookup operations.',
    );
    this.lmcacheRetrieveRequests = counter(
      'lmcache:num_retrieve_requests_total',
      'Total number of retrieve requests sent to LMCache.',
    );
    this.lmcacheRequestedTokens = counter(
      'lmcache:num_requested_tokens_total',
      'Total number of tokens requested for retrieval.',
    );
    this.lmcacheHitTokens = counter(
      'lmcache:num_hit_tokens_total',
      'Total number of tokens hit in LMCache during retrieval.',
    );
    this.lmcacheStoreRequests = counter(
      'lmcache:num_store_requests_total',
      'Total number of store requests sent to LMCache.',
    );
    this.lmcacheStoredTokens = counter(
      'lmcache:num_stored_tokens_total',
      'Total number of tokens stored in LMCache.',
    );
    this.lmcacheVllmHitTokens = counter('lmcache:num_vllm_hit_tokens_total', 'Number of hit tokens in vLLM.');
    this.lmcachePromptTokens = counter(
      'lmcache:num_prompt_tokens_total',
      'Number of prompt tokens in LMCache.',
    );
    this.lmcacheRemoteReadRequests = counter(
      'lmcache:num_remote_read_requests_total',
      'Total number of read requests to remote backends.',
    );
    this.lmcacheRemoteWriteRequests = counter(
      'lmcache:num_remote_write_requests_total',
      'Total number of write requests to remote backends.',
    );
    let evictionsSeen = 0;
    this.lmcacheLocalCpuEvictCount = new Counter({
      name: 'lmcache:local_cpu_evict_count_total',
      help: 'Total number of evictions in local CPU backend.',
      registers,
      collect() {
        const total = sample().lmcacheCpuEvictions;
        if (total > evictionsSeen) this.inc(total - evictionsSeen);
        evictionsSeen = total;
      },
    });
    this.lmcacheLocalCacheUsage = new Gauge({
      name: 'lmcache:local_cache_usage',
      help: 'Local cache usage (bytes) of LMCache.',
      registers,
      collect() {
        this.set(sample().lmcacheLocalBytes);
      },
    });
  }

  /** Prometheus text exposition. */
  async render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
