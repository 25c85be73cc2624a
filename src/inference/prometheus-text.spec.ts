import { cacheCountersOf } from './adapters/vllm.adapter';
import { parsePrometheusText, sumCounter } from './prometheus-text';

/** An excerpt in the shape vLLM (prometheus_client) and LMCache serve. */
const EXPOSITION = `# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 12000.0
vllm:prefix_cache_queries_total{engine="1",model_name="meta-llama/Llama-3.1-8B-Instruct"} 8000.0
# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 9000.0
vllm:prefix_cache_hits_total{engine="1",model_name="meta-llama/Llama-3.1-8B-Instruct"} 6000.0
vllm:prompt_tokens_total{model_name="m"} 20000 1732200000000
vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="m"} 42
vllm:kv_cache_usage_perc{model_name="m",note="a \\"quoted\\" label"} NaN
lmcache:num_requested_tokens{model_name="m"} 5000
lmcache:num_hit_tokens{model_name="m"} 1250
not a sample line
`;

describe('parsePrometheusText', () => {
  it('should read names, labels (escapes included) and values, skipping comments and junk', () => {
    const samples = parsePrometheusText(EXPOSITION);

    expect(samples).toHaveLength(9);
    expect(samples[0]).toEqual({
      name: 'vllm:prefix_cache_queries_total',
      labels: { engine: '0', model_name: 'meta-llama/Llama-3.1-8B-Instruct' },
      value: 12000,
    });
    expect(samples.find((s) => s.name.endsWith('_bucket'))?.labels.le).toBe('+Inf');
    expect(samples.find((s) => s.name === 'vllm:kv_cache_usage_perc')?.labels.note).toBe('a "quoted" label');
    expect(samples.find((s) => s.name === 'vllm:prompt_tokens_total')?.value).toBe(20000);
  });

  it('should sum a counter over label sets under either spelling of its name', () => {
    const samples = parsePrometheusText(EXPOSITION);

    expect(sumCounter(samples, 'vllm:prefix_cache_queries')).toBe(20000);
    expect(sumCounter(samples, 'vllm:prefix_cache_hits_total')).toBe(15000);
    expect(sumCounter(samples, 'lmcache:num_hit_tokens')).toBe(1250);
    expect(sumCounter(samples, 'vllm:absent')).toBeUndefined();
  });

  it('should turn an exposition into the prefix-cache and LMCache counters the stats show', () => {
    expect(cacheCountersOf(parsePrometheusText(EXPOSITION))).toEqual({
      prefixCacheQueriedTokens: 20000,
      prefixCacheHitTokens: 15000,
      prefixCacheHitRate: 0.75,
      promptTokens: 20000,
      lmcache: { requestedTokens: 5000, hitTokens: 1250, hitRate: 0.25, storedTokens: null },
    });
    expect(cacheCountersOf(parsePrometheusText('vllm:prefix_cache_queries_total 0\n')).lmcache).toBeNull();
  });
});
