import { loadConfigClass } from '../config/config.loader';
import { MetricsConfig } from '../config/metrics.config';
import { MetricsService, type TurnSample } from './metrics.service';

const sample = (overrides: Partial<TurnSample> = {}): TurnSample => ({
  source: 'engine',
  agent: 'assistant',
  replica: 'http://replica-0:8000/v1',
  promptTokens: 100,
  cachedTokens: 64,
  completionTokens: 20,
  ttftMs: 120,
  itlMs: 15,
  prefixReuse: 0.64,
  totalMs: 450,
  tenantId: 'tenant-1',
  ...overrides,
});

async function value(
  sut: MetricsService,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = sut.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values
    .filter((v) =>
      Object.entries(labels).every(([k, l]) => String((v.labels as Record<string, unknown>)[k]) === l),
    )
    .reduce((a, v) => a + v.value, 0);
}

describe('MetricsService', () => {
  const build = (env: Record<string, string> = {}) =>
    new MetricsService(loadConfigClass(MetricsConfig, { METRICS_PROCESS: 'false', ...env }));

  it('should count response-cache lookups by result and observe the similarity of semantic candidates', async () => {
    const sut = build();
    sut.recordResponseCacheLookup('exact');
    sut.recordResponseCacheLookup('semantic', 0.93);
    sut.recordResponseCacheLookup('guard_rejected', 0.91);
    sut.recordResponseCacheLookup('miss');
    sut.recordResponseCacheLookup('miss');
    expect(await value(sut, 'kvchat_response_cache_lookups_total', { result: 'miss' })).toBe(2);
    expect(await value(sut, 'kvchat_response_cache_lookups_total', { result: 'exact' })).toBe(1);
    expect(await value(sut, 'kvchat_response_cache_similarity', { result: 'semantic' })).toBeGreaterThan(0);
    const text = (await sut.scrape()).body;
    expect(text).toContain('kvchat_response_cache_similarity_count{result="guard_rejected"} 1');
  });

  it('should record engine tokens, TTFT and prefix reuse for an engine turn but not for a response-cache hit', async () => {
    const sut = build();
    sut.recordTurn(sample());
    sut.recordTurn(
      sample({ source: 'exact', replica: null, promptTokens: 0, cachedTokens: 0, completionTokens: 30 }),
    );
    expect(await value(sut, 'kvchat_turns_total', { source: 'engine' })).toBe(1);
    expect(await value(sut, 'kvchat_turns_total', { source: 'exact' })).toBe(1);
    expect(await value(sut, 'kvchat_prompt_tokens_total')).toBe(100);
    expect(await value(sut, 'kvchat_cached_tokens_total')).toBe(64);
    expect(await value(sut, 'kvchat_completion_tokens_total')).toBe(20);
    const text = (await sut.scrape()).body;
    expect(text).toContain('kvchat_ttft_seconds_count{replica="http://replica-0:8000/v1"} 1');
    expect(text).toContain('kvchat_ttft_seconds_sum{replica="http://replica-0:8000/v1"} 0.12');
    expect(text).toContain('kvchat_prefix_reuse_ratio_count 1');
    expect(text).toContain('kvchat_turn_duration_seconds_count{source="exact"} 1');
  });

  it('should cap the agent label at 32 distinct values and reject names that are not identifiers', async () => {
    const sut = build();
    for (let i = 0; i < 40; i++) sut.recordTurn(sample({ agent: `agent-${i}` }));
    sut.recordTurn(sample({ agent: 'agent-0' }));
    sut.recordTurn(sample({ agent: 'Robert"); DROP TABLE' }));
    expect(await value(sut, 'kvchat_turns_total', { agent: 'agent-0' })).toBe(2);
    expect(await value(sut, 'kvchat_turns_total', { agent: 'other' })).toBe(9);
    const agents = new Set(
      (await sut.registry.getSingleMetric('kvchat_turns_total')!.get()).values.map((v) => v.labels.agent),
    );
    expect(agents.size).toBe(33);
  });

  it('should add a tenant label only when METRICS_TENANT_LABEL is on', async () => {
    const off = build();
    off.recordTurn(sample());
    expect((await off.scrape()).body).not.toContain('tenant-1');
    const on = build({ METRICS_TENANT_LABEL: 'true' });
    on.recordTurn(sample());
    expect(await value(on, 'kvchat_prompt_tokens_total', { tenant: 'tenant-1' })).toBe(100);
  });

  it('should count a failed turn by code, and by replica when the error names one', async () => {
    const sut = build();
    sut.recordTurnError('EngineTimeout', 'http://replica-1:8000/v1');
    sut.recordTurnError('RequestAborted');
    expect(await value(sut, 'kvchat_turn_errors_total')).toBe(2);
    expect(
      await value(sut, 'kvchat_engine_errors_total', {
        replica: 'http://replica-1:8000/v1',
        code: 'EngineTimeout',
      }),
    ).toBe(1);
  });

  it('should label requests no route matched as unmatched, never by URL', async () => {
    const sut = build();
    sut.recordHttpRequest('GET', undefined, 404, 0.001);
    sut.recordHttpRequest('GET', '/v1/conversations/:id', 200, 0.002);
    const text = (await sut.scrape()).body;
    expect(text).toContain('route="unmatched",status_code="404"');
    expect(text).toContain('route="/v1/conversations/:id",status_code="200"');
  });
});
