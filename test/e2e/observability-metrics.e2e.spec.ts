import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchInstance } from '../../bench/harness';
import { EngineMetricsService } from '../../src/inference/engine-metrics.service';
import { checkDashboardMetrics } from '../../src/observability/promql-names';
import { startEngineSimulator, type RunningSimulator } from '../../src/simulator/simulator.server';
import {
  bootApp,
  call,
  metricSum,
  newConversation,
  parseMetrics,
  scrape,
  streamedTurn,
  turn,
  type Sample,
} from '../factories/observability-app';

const TURNS_ROUTE = '/v1/conversations/:id/turns';

/** after - before, for one metric and label subset. */
const delta = (
  before: Sample[],
  after: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number => metricSum(after, name, labels) - metricSum(before, name, labels);

describe('GET /metrics (e2e)', () => {
  let sim: RunningSimulator;
  let app: BenchInstance;

  beforeAll(async () => {
    sim = await startEngineSimulator({ timing: { timeScale: 0 } });
    app = await bootApp({ INFERENCE_ENDPOINTS: sim.baseURL });
  });

  afterAll(async () => {
    await app?.close();
    await sim?.close();
  });

  it('should serve Prometheus text without an API key, with process metrics', async () => {
    const res = await fetch(`${app.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('# TYPE process_cpu_user_seconds_total counter');
    expect(text).toContain('# TYPE nodejs_heap_size_used_bytes gauge');
    expect(text).toContain('# TYPE kvchat_ttft_seconds histogram');
  });

  it('should move turn, token, TTFT and HTTP metrics by exactly what the turns reported', async () => {
    const before = await scrape(app);
    const a = await newConversation(app);
    const question = `How large is one KV cache block in tokens, run ${Date.now()}?`;
    const first = await turn(app, a, question);
    const second = await turn(app, a, 'And how many blocks does a long chat history take?');
    const streamed = await streamedTurn(app, a, 'Stream the answer about prefix hashing, please.');
    const final = streamed.events.find((e) => e.event === 'turn')?.data;
    const b = await newConversation(app);
    const exact = await turn(app, b, question);
    expect([first.status, second.status, exact.status, streamed.status]).toEqual([201, 201, 201, 200]);
    expect(exact.body.assistantMessage.cache.response).toMatchObject({ hit: true, type: 'exact' });
    const after = await scrape(app);

    const engine = [first.body, second.body, final].map((t) => t.assistantMessage);
    const sum = (pick: (t: any) => number): number => engine.reduce((acc, t) => acc + pick(t), 0);
    const replica = first.body.assistantMessage.replica as string;
    expect(engine.every((t) => t.replica === replica)).toBe(true);

    expect(delta(before, after, 'kvchat_turns_total', { source: 'engine' })).toBe(3);
    expect(delta(before, after, 'kvchat_turns_total', { source: 'exact' })).toBe(1);
    expect(
      delta(before, after, 'kvchat_turns_total', {
        source: 'engine',
        agent: first.body.assistantMessage.route.agent,
      }),
    ).toBe(3);
    expect(delta(before, after, 'kvchat_turn_duration_seconds_count', { source: 'engine' })).toBe(3);
    expect(delta(before, after, 'kvchat_turn_duration_seconds_count', { source: 'exact' })).toBe(1);

    // Engine figures: only the three engine turns count; the exact hit used no engine tokens.
    expect(delta(before, after, 'kvchat_prompt_tokens_total', { replica })).toBe(
      sum((t) => t.usage.promptTokens),
    );
    expect(delta(before, after, 'kvchat_cached_tokens_total', { replica })).toBe(
      sum((t) => t.usage.cachedTokens),
    );
    expect(delta(before, after, 'kvchat_completion_tokens_total', { replica })).toBe(
      sum((t) => t.usage.completionTokens),
    );
    expect(sum((t) => t.usage.cachedTokens)).toBeGreaterThan(0);
    expect(delta(before, after, 'kvchat_ttft_seconds_count', { replica })).toBe(3);
    expect(delta(before, after, 'kvchat_ttft_seconds_sum', { replica })).toBeCloseTo(
      sum((t) => t.timings.ttftMs) / 1000,
      1,
    );
    expect(delta(before, after, 'kvchat_prefix_reuse_ratio_count')).toBe(3);
    expect(delta(before, after, 'kvchat_prefix_reuse_ratio_sum')).toBeCloseTo(
      sum((t) => t.cache.prefixReuse),
      5,
    );
    expect(delta(before, after, 'kvchat_itl_seconds_count', { replica })).toBe(
      engine.filter((t) => t.usage.completionTokens > 1).length,
    );

    // HTTP: labelled by route pattern and status, never by URL.
    expect(
      delta(before, after, 'kvchat_http_request_duration_seconds_count', {
        method: 'POST',
        route: TURNS_ROUTE,
        status_code: '201',
      }),
    ).toBe(3);
    expect(
      delta(before, after, 'kvchat_http_request_duration_seconds_count', {
        method: 'POST',
        route: TURNS_ROUTE,
        status_code: '200',
      }),
    ).toBe(1);
    expect(
      delta(before, after, 'kvchat_http_request_duration_seconds_count', {
        method: 'POST',
        route: '/v1/conversations',
        status_code: '201',
      }),
    ).toBe(2);
  });

  it('should count failed turns by code and replica, and requests no route matched, 401s and 404s', async () => {
    const before = await scrape(app);
    const id = await newConversation(app);
    sim.engine.setFaults({ errorRate: 1, errorStatus: 500 });
    const failed = await turn(app, id, 'This one fails in the engine').finally(() =>
      sim.engine.setFaults({ errorRate: 0 }),
    );
    expect(failed.status).toBe(502);
    const unauthorized = await fetch(`${app.url}/v1/conversations`);
    expect(unauthorized.status).toBe(401);
    const unknownPath = await call(app, `/no/such/path/${Date.now()}`);
    expect(unknownPath.status).toBe(404);
    const unknownConversation = await call(app, '/v1/conversations/00000000-0000-4000-8000-000000000000');
    expect(unknownConversation.status).toBe(404);
    const after = await scrape(app);

    expect(delta(before, after, 'kvchat_turn_errors_total', { code: 'EngineError' })).toBe(1);
    expect(
      delta(before, after, 'kvchat_engine_errors_total', { code: 'EngineError', replica: sim.baseURL }),
    ).toBe(1);
    expect(delta(before, after, 'kvchat_turns_total')).toBe(0);
    expect(
      delta(before, after, 'kvchat_http_request_duration_seconds_count', {
        route: TURNS_ROUTE,
        status_code: '502',
      }),
    ).toBe(1);
    expect(
      delta(before, after, 'kvchat_http_request_duration_seconds_count', {
        route: '/v1/conversations',
        status_code: '401',
      }),
    ).toBe(1);
    expect(
      delta(before, after, 'kvchat_http_request_duration_seconds_count', {
        route: 'unmatched',
        status_code: '404',
      }),
    ).toBe(1);
    expect(
      delta(before, after, 'kvchat_http_request_duration_seconds_count', {
        route: '/v1/conversations/:id',
        status_code: '404',
      }),
    ).toBe(1);
  });

  it('should report replica health and in-flight requests, queue depth and Langfuse state at scrape time', async () => {
    const samples = await scrape(app);
    expect(metricSum(samples, 'kvchat_replica_healthy', { replica: sim.baseURL })).toBe(1);
    expect(samples.filter((s) => s.name === 'kvchat_replica_in_flight').map((s) => s.labels.replica)).toEqual(
      [sim.baseURL],
    );
    expect(metricSum(samples, 'kvchat_replica_in_flight', { replica: sim.baseURL })).toBe(0);
    // The summaries queue (src/context) is registered: its depth and failed jobs are reported.
    const queues = new Set(samples.filter((s) => s.name === 'kvchat_queue_jobs').map((s) => s.labels.queue));
    expect(queues.size).toBeGreaterThan(0);
    for (const queue of queues) {
      for (const state of ['waiting', 'active', 'delayed', 'failed']) {
        expect(
          samples.some(
            (s) => s.name === 'kvchat_queue_jobs' && s.labels.queue === queue && s.labels.state === state,
          ),
        ).toBe(true);
      }
    }
    for (const queue of queues) {
      expect(metricSum(samples, 'kvchat_queue_stalled', { queue })).toBe(0);
      expect(
        samples.some((s) => s.name === 'kvchat_queue_oldest_waiting_seconds' && s.labels.queue === queue),
      ).toBe(true);
      expect(samples.some((s) => s.name === 'kvchat_queue_failed_attempts' && s.labels.queue === queue)).toBe(
        true,
      );
    }
    // Langfuse is off (no keys): nothing queued, nothing sent.
    expect(metricSum(samples, 'kvchat_langfuse_queue_events')).toBe(0);
    expect(metricSum(samples, 'kvchat_langfuse_events_total')).toBe(0);
    // Every response-cache lookup result has a series from the start, so rates and ratios exist.
    for (const result of ['exact', 'semantic', 'miss', 'guard_rejected']) {
      expect(
        samples.some((s) => s.name === 'kvchat_response_cache_lookups_total' && s.labels.result === result),
      ).toBe(true);
    }
  });

  it("should mirror the engine's own prefix-cache counters per replica", async () => {
    const id = await newConversation(app);
    await turn(app, id, 'Warm the prefix cache with a first question about block tables.');
    await turn(app, id, 'Then reuse that prefix with a follow-up about eviction.');
    await app.running.app.get(EngineMetricsService).scrapeAll();
    const samples = await scrape(app);
    const queried = metricSum(samples, 'kvchat_engine_prefix_cache_queried_tokens', { replica: sim.baseURL });
    const hits = metricSum(samples, 'kvchat_engine_prefix_cache_hit_tokens', { replica: sim.baseURL });
    const engine = await (await fetch(`${sim.url}/metrics`)).text();
    const sumOf = (name: string): number =>
      parseMetrics(engine)
        .filter((s) => s.name === name)
        .reduce((a, s) => a + s.value, 0);
    // The replica's own exposition, as vLLM names the samples (`_total` added by prometheus_client).
    expect(queried).toBe(sumOf('vllm:prefix_cache_queries_total'));
    expect(hits).toBe(sumOf('vllm:prefix_cache_hits_total'));
    expect(hits).toBeGreaterThan(0);
    expect(hits).toBeLessThanOrEqual(queried);
  });

  it('should keep conversation ids, tenant ids and message content out of every label', async () => {
    const id = await newConversation(app);
    const content = `label-leak-probe-${Date.now()}`;
    expect((await turn(app, id, content)).status).toBe(201);
    const text = await (await fetch(`${app.url}/metrics`)).text();
    expect(text).not.toContain(id);
    expect(text).not.toContain(app.tenantId);
    expect(text).not.toContain(content);
    const labelNames = new Set(parseMetrics(text).flatMap((s) => Object.keys(s.labels)));
    expect([...labelNames].filter((l) => /conversation|tenant|user|message/i.test(l))).toEqual([]);
  });

  it('should export every metric the Grafana dashboard queries', async () => {
    const dashboard: unknown = JSON.parse(
      readFileSync(join(__dirname, '../../config/grafana/kvchat-dashboard.json'), 'utf8'),
    );
    const text = await (await fetch(`${app.url}/metrics`)).text();
    const sut = checkDashboardMetrics(dashboard, text);
    expect(sut.problems).toEqual([]);
    expect(sut.queries).toBeGreaterThan(15);
  });
});

describe('GET /metrics with METRICS_TENANT_LABEL (e2e)', () => {
  let app: BenchInstance;

  beforeAll(async () => {
    app = await bootApp({ METRICS_TENANT_LABEL: 'true' });
  });

  afterAll(async () => {
    await app?.close();
  });

  it('should label turn and token counters with the tenant id, never its name', async () => {
    const id = await newConversation(app);
    const res = await turn(app, id, 'Count my tokens per tenant');
    expect(res.status).toBe(201);
    const samples = await scrape(app);
    expect(metricSum(samples, 'kvchat_turns_total', { tenant: app.tenantId })).toBe(1);
    expect(metricSum(samples, 'kvchat_prompt_tokens_total', { tenant: app.tenantId })).toBe(
      res.body.assistantMessage.usage.promptTokens,
    );
    expect(samples.some((s) => s.labels.tenant?.startsWith('obs-'))).toBe(false);
  });
});
