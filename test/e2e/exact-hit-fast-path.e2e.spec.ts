import { randomUUID } from 'node:crypto';
import { MikroORM } from '@mikro-orm/postgresql';
import { Tenant } from '../../src/auth/tenant.entity';
import { RESPONSE_CACHE_STORE, type ResponseCacheStore } from '../../src/caching/response-cache.store';
import { ChatCompletionsService } from '../../src/completions/chat-completions.service';
import { TracingService } from '../../src/observability/tracing.service';
import { startEngineSimulator, type RunningSimulator } from '../../src/simulator/simulator.server';
import type { UsageInput } from '../../src/usage/usage.types';
import { UsageRecorder } from '../../src/usage/usage-recorder.service';
import { startLangfuseReceiver, type LangfuseReceiver } from '../factories/langfuse-receiver';
import { deleteRedisPrefix } from '../factories/redis';
import { postSse } from '../factories/sse';
import { api, startTestApp, type TestApp } from '../factories/test-app';

/**
 * Exact response-cache hits of non-streamed chat completions answered in a Fastify hook before Nest's
 * router (src/completions/exact-hit.hook.ts). Two apps share one Redis prefix and one database: `fast`
 * (the default) and `nest` (RESPONSE_CACHE_EXACT_FAST_PATH=false), so the same stored entry is served
 * by both paths and what each answers, records and traces can be compared.
 */
describe('exact-hit fast path of /v1/chat/completions (e2e)', () => {
  const prefix = `kvchat-test-${randomUUID()}:`;
  let sim: RunningSimulator;
  let receiver: LangfuseReceiver;
  let fast: TestApp;
  let nest: TestApp;
  let model: string;
  const recorded = { fast: [] as UsageInput[], nest: [] as UsageInput[] };
  /** Calls of the normal path's service method on the fast app (the fast path does not call it). */
  let normalPathCalls: jest.SpyInstance;

  beforeAll(async () => {
    sim = await startEngineSimulator({ timing: { timeScale: 0 }, replyTokens: { min: 8, max: 24 } });
    receiver = await startLangfuseReceiver();
    const env = {
      INFERENCE_ENDPOINTS: sim.baseURL,
      REDIS_KEY_PREFIX: prefix,
      LANGFUSE_PUBLIC_KEY: 'pk-lf-test',
      LANGFUSE_SECRET_KEY: 'sk-lf-test',
      LANGFUSE_BASEURL: receiver.url,
      LANGFUSE_FLUSH_INTERVAL_MS: '20',
    };
    fast = await startTestApp(env);
    nest = await startTestApp({ ...env, RESPONSE_CACHE_EXACT_FAST_PATH: 'false' });
    for (const [name, app] of [
      ['fast', fast],
      ['nest', nest],
    ] as const) {
      const recorder = app.running.app.get(UsageRecorder);
      const record = recorder.record.bind(recorder);
      jest.spyOn(recorder, 'record').mockImplementation((input) => {
        recorded[name].push(input);
        return record(input);
      });
    }
    normalPathCalls = jest.spyOn(fast.running.app.get(ChatCompletionsService), 'complete');
    model = (await api<{ data: { id: string }[] }>(`${fast.url}/v1/models`, { key: fast.keyA })).body.data[0]
      .id;
  });
  afterAll(async () => {
    await fast?.close();
    await nest?.close();
    await deleteRedisPrefix(prefix);
    await receiver?.close();
    await sim?.close();
  });

  const ask = (app: TestApp, content: string, extra: Record<string, unknown> = {}, key = fast.keyA) =>
    api(`${app.url}/v1/chat/completions`, {
      key,
      body: {
        model,
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content },
        ],
        ...extra,
      },
    });
  /** Headers that legitimately differ between two responses (time, request id, rate-limit window). */
  const comparableHeaders = (headers: Headers): Record<string, string> =>
    Object.fromEntries(
      [...headers.entries()].filter(
        ([name]) => !/^(date|x-request-id|x-ratelimit-(remaining|reset).*)$/.test(name),
      ),
    );
  /** The body without what is fresh per response (id, created). */
  const comparableBody = (body: Record<string, unknown>) => ({ ...body, id: undefined, created: undefined });
  const engineRequests = (): number => sim.engine.state().requests.started;
  /** An OpenAI error body without its request id. */
  const comparableError = (body: { error: { kvchat?: Record<string, unknown> } }) => ({
    error: { ...body.error, kvchat: { ...body.error.kvchat, requestId: undefined } },
  });

  it('should serve the same body, headers, usage record and trace as the normal path, without it', async () => {
    const question = 'What does an exact hit cost?';
    const miss = await ask(nest, question, { max_tokens: 64 });
    expect(miss.headers.get('x-kvchat-cache')).toBe('miss');
    const viaNest = await ask(nest, question, { max_tokens: 64 });
    const calls = normalPathCalls.mock.calls.length;
    const engineBefore = engineRequests();
    const viaFast = await ask(fast, question, { max_tokens: 64 });

    expect(normalPathCalls.mock.calls.length).toBe(calls);
    expect(engineRequests()).toBe(engineBefore);
    expect(viaFast.status).toBe(200);
    expect(viaFast.headers.get('x-kvchat-cache')).toBe('hit-exact');
    expect(viaFast.body.id).toMatch(/^chatcmpl-[0-9a-f]{32}$/);
    expect(comparableBody(viaFast.body)).toEqual(comparableBody(viaNest.body));
    expect(comparableHeaders(viaFast.headers)).toEqual(comparableHeaders(viaNest.headers));
    expect(viaFast.headers.get('x-request-id')).toBeTruthy();

    // One usage record each, alike but for the request id and the time taken.
    const strip = ({ requestId: _r, latencyMs: _l, ...rest }: UsageInput) => rest;
    const fastRecord = recorded.fast.find((r) => r.requestId === viaFast.headers.get('x-request-id'));
    const nestRecord = recorded.nest.find((r) => r.requestId === viaNest.headers.get('x-request-id'));
    expect(fastRecord).toBeDefined();
    expect(strip(fastRecord as UsageInput)).toEqual(strip(nestRecord as UsageInput));
    expect(fastRecord).toMatchObject({ tenantId: fast.tenantA, cacheLayer: 'exact', promptTokens: 0 });

    // A Langfuse trace each, with the response-cache span reporting the hit.
    await fast.running.app.get(TracingService).flush();
    await nest.running.app.get(TracingService).flush();
    const hitTraces = (): string[] =>
      [
        ...new Set(
          receiver.events
            .filter((e) => e.type === 'trace-create' && e.body.input === question)
            .map((e) => String(e.body.id)),
        ),
      ].filter((id) =>
        receiver.eventsOf(id).some((e) => e.type === 'span-update' && e.body.output?.hit === true),
      );
    await receiver.waitFor(
      () =>
        hitTraces().length === 2 &&
        hitTraces().every((id) =>
          receiver.eventsOf(id).some((e) => e.type === 'trace-create' && e.body.output),
        ),
    );
    // Everything but ids, times and durations.
    const shape = (traceId: string) =>
      receiver
        .eventsOf(traceId)
        .map((e) => ({
          type: e.type,
          name: e.body.name,
          input: e.body.input,
          output: e.body.output,
          tags: e.body.tags,
          metadata: e.body.metadata ? { ...e.body.metadata, timings: undefined } : undefined,
        }))
        .sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
    const [a, b] = hitTraces();
    expect(shape(a).length).toBeGreaterThanOrEqual(3);
    expect(shape(a)).toEqual(shape(b));
  });

  it("should never serve another tenant's answer", async () => {
    const question = 'Which tenant asked this?';
    await ask(fast, question);
    expect((await ask(fast, question)).headers.get('x-kvchat-cache')).toBe('hit-exact');
    const calls = normalPathCalls.mock.calls.length;
    const engineBefore = engineRequests();
    const other = await ask(fast, question, {}, fast.keyB);
    expect(other.status).toBe(200);
    expect(other.headers.get('x-kvchat-cache')).toBe('miss');
    expect(normalPathCalls.mock.calls.length).toBe(calls + 1);
    expect(engineRequests()).toBe(engineBefore + 1);
  });

  it('should ask Redis for the exact key of a miss no more often than the normal path does', async () => {
    const lookups = (app: TestApp): jest.SpyInstance =>
      jest.spyOn(app.running.app.get<ResponseCacheStore>(RESPONSE_CACHE_STORE), 'getExact');
    const viaFast = lookups(fast);
    const viaNest = lookups(nest);
    try {
      expect(
        (await ask(fast, 'Which enzymes digest starch in the mouth?')).headers.get('x-kvchat-cache'),
      ).toBe('miss');
      expect((await ask(nest, 'How do I renew a passport abroad?')).headers.get('x-kvchat-cache')).toBe(
        'miss',
      );
      // The fast path's lookup stands for the normal path's (the single-flight leader re-checks once).
      expect(viaFast.mock.calls.length).toBe(viaNest.mock.calls.length);
    } finally {
      viaFast.mockRestore();
      viaNest.mockRestore();
    }
  });

  it('should not skip authentication, scopes or the model allow-list', async () => {
    const question = 'Who may read this answer?';
    await ask(fast, question);
    expect((await ask(fast, question)).headers.get('x-kvchat-cache')).toBe('hit-exact');

    const noKey = await api(`${fast.url}/v1/chat/completions`, {
      body: {
        model,
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: question },
        ],
      },
    });
    expect(noKey.status).toBe(401);
    expect((await ask(fast, question, {}, 'kvc_not-a-key')).status).toBe(401);

    const orm = fast.running.app.get(MikroORM);
    const tenant = await orm.em.fork().findOneOrFail(Tenant, { id: fast.tenantA });
    const chatOnly = await fast.keys.issue(tenant, { scopes: ['chat'] });
    const otherModel = await fast.keys.issue(tenant, { models: ['some-other-model'] });
    for (const key of [chatOnly.key, otherModel.key]) {
      const viaFast = await ask(fast, question, {}, key);
      const viaNest = await ask(nest, question, {}, key);
      expect(viaFast.status).toBe(403);
      expect(comparableError(viaFast.body)).toEqual(comparableError(viaNest.body));
      expect(viaFast.headers.get('x-kvchat-cache')).toBeNull();
    }
  });

  it('should leave streams, idempotent requests, invalid bodies and cache bypasses to the normal path', async () => {
    const question = 'What falls through?';
    await ask(fast, question);
    expect((await ask(fast, question)).headers.get('x-kvchat-cache')).toBe('hit-exact');
    const calls = normalPathCalls.mock.calls.length;

    const streamed = await postSse(`${fast.url}/v1/chat/completions`, fast.keyA, {
      model,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: question },
      ],
      stream: true,
    });
    expect(streamed.text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(normalPathCalls.mock.calls.length).toBe(calls + 1);

    const idempotent = await api(`${fast.url}/v1/chat/completions`, {
      key: fast.keyA,
      headers: { 'idempotency-key': randomUUID() },
      body: {
        model,
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: question },
        ],
      },
    });
    expect(idempotent.headers.get('x-kvchat-cache')).toBe('hit-exact');
    expect(normalPathCalls.mock.calls.length).toBe(calls + 2);

    const invalidFast = await ask(fast, question, { temperature: 3 });
    const invalidNest = await ask(nest, question, { temperature: 3 });
    expect(invalidFast.status).toBe(400);
    expect(comparableError(invalidFast.body)).toEqual(comparableError(invalidNest.body));

    const bypass = await ask(fast, question, { cache: { mode: 'bypass' } });
    expect(bypass.headers.get('x-kvchat-cache')).toBe('miss');
    // The invalid body never reached the service (the validation pipe answered): two more calls, not three.
    expect(normalPathCalls.mock.calls.length).toBe(calls + 3);
  });
});
