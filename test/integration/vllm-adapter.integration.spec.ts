import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, getGlobalDispatcher, setGlobalDispatcher } from 'undici';
import { until } from '../factories/until';
import { InferenceConfig } from '../../src/config/inference.config';
import { AnthropicEngineAdapter } from '../../src/inference/adapters/anthropic.adapter';
import { OpenAiEngineAdapter } from '../../src/inference/adapters/openai.adapter';
import { VllmEngineAdapter } from '../../src/inference/adapters/vllm.adapter';
import type {
  EngineAdapter,
  EngineChatEvent,
  EngineChatRequest,
  EngineEndpoint,
} from '../../src/inference/engine-adapter';
import {
  EngineStreamCut,
  EngineTokenizeUnsupported,
  EngineUnavailable,
  EngineUnreachable,
} from '../../src/inference/inference.errors';
import { type RunningSimulator, startEngineSimulator } from '../../src/simulator/simulator.server';

/** Reads a whole chat stream. */
async function drain(events: AsyncIterable<EngineChatEvent>): Promise<EngineChatEvent[]> {
  const out: EngineChatEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

const LONG_SYSTEM = 'You are kvchat, a careful assistant. '.repeat(20);

describe('VllmEngineAdapter against the engine simulator (HTTP)', () => {
  let sim: RunningSimulator;
  let endpoint: EngineEndpoint;
  let sut: VllmEngineAdapter;
  let model: string;
  let notVllm: Server;
  let notVllmEndpoint: EngineEndpoint;

  const chat = (overrides: Partial<EngineChatRequest> = {}): EngineChatRequest => ({
    model,
    messages: [
      { role: 'system', content: LONG_SYSTEM },
      { role: 'user', content: 'What is a prefix cache?' },
    ],
    maxTokens: 16,
    ...overrides,
  });

  beforeAll(async () => {
    sim = await startEngineSimulator({ timing: { timeScale: 0 } });
    endpoint = { id: sim.baseURL, baseURL: sim.baseURL };
    sut = new VllmEngineAdapter(Object.assign(new InferenceConfig(), { INFERENCE_TIMEOUT_MS: 10_000 }));
    model = sim.engine.options.model;
    // An HTTP server that is not vLLM: 404 for everything.
    notVllm = createServer((_req, res) => res.writeHead(404).end('{"error":"not found"}'));
    await new Promise<void>((resolve) => notVllm.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(notVllm.address() as AddressInfo).port}/v1`;
    notVllmEndpoint = { id: url, baseURL: url };
  });

  afterAll(async () => {
    await sut?.onApplicationShutdown();
    await sim?.close();
    await new Promise((resolve) => notVllm?.close(resolve));
  });

  afterEach(() => sim.engine.setFaults({ errorRate: 0 }));

  it('should list the served model and report the endpoint healthy', async () => {
    await expect(sut.models(endpoint, 5000)).resolves.toContain(model);
    await expect(sut.health(endpoint, 5000)).resolves.toBeUndefined();
  });

  it('should stream deltas, the finish reason, usage and the engine timings', async () => {
    const stream = await sut.chatStream(endpoint, chat(), new AbortController().signal);
    const events = await drain(stream.events);

    const text = events.flatMap((e) => (e.type === 'delta' ? [e.text] : [])).join('');
    expect(text.length).toBeGreaterThan(0);
    expect(events).toContainEqual({ type: 'finish', reason: expect.any(String) });
    expect(events).toContainEqual({
      type: 'usage',
      usage: { promptTokens: expect.any(Number), completionTokens: expect.any(Number), cachedTokens: 0 },
    });
    expect(stream.engineTimings.engineTtftMs).toEqual(expect.any(Number));
  });

  it('should answer whole (stream: false) with the same text as the stream, usage with cached tokens and the engine timings', async () => {
    const streamed = await drain(
      (
        await sut.chatStream(
          endpoint,
          chat({ sampling: { seed: 11 }, cacheSalt: 'whole' }),
          new AbortController().signal,
        )
      ).events,
    );
    const answer = await sut.chatAnswer(
      endpoint,
      chat({ sampling: { seed: 11 }, cacheSalt: 'whole' }),
      new AbortController().signal,
    );

    const text = streamed.flatMap((e) => (e.type === 'delta' ? [e.text] : [])).join('');
    expect(answer.events[0]).toEqual({ type: 'delta', text });
    expect(answer.events).toContainEqual({ type: 'finish', reason: expect.any(String) });
    // The prompt was seen by the stream: the whole answer reports it cached, as vLLM does.
    const usage = answer.events.find((e) => e.type === 'usage');
    expect(usage).toMatchObject({
      usage: { promptTokens: expect.any(Number), completionTokens: expect.any(Number) },
    });
    expect(usage?.type === 'usage' ? usage.usage.cachedTokens : 0).toBeGreaterThan(0);
    expect(answer.engineTimings.engineTtftMs).toEqual(expect.any(Number));
  });

  it('should answer whole through the SDK for an OpenAI-compatible deployment, while Anthropic deployments stream', async () => {
    const config = Object.assign(new InferenceConfig(), { INFERENCE_TIMEOUT_MS: 10_000 });
    const answer = await new OpenAiEngineAdapter(config).chatAnswer(
      endpoint,
      chat({ promptCacheKey: 'tenant-salt' }),
      new AbortController().signal,
    );

    expect(answer.events[0]).toEqual({ type: 'delta', text: expect.any(String) });
    expect(answer.events).toContainEqual({ type: 'finish', reason: expect.any(String) });
    expect(answer.events.some((e) => e.type === 'usage')).toBe(true);
    // No whole answers from the Messages API: InferenceService reads its stream (engine-adapter.ts).
    const anthropic: EngineAdapter = new AnthropicEngineAdapter(config);
    expect(anthropic.chatAnswer).toBeUndefined();
  });

  it('should map an overloaded engine to EngineUnavailable and a refused connection to EngineUnreachable for whole answers', async () => {
    sim.engine.setFaults({ errorRate: 1, errorStatus: 503 });
    await expect(sut.chatAnswer(endpoint, chat(), new AbortController().signal)).rejects.toThrow(
      EngineUnavailable,
    );
    const closed: EngineEndpoint = { id: 'http://127.0.0.1:1/v1', baseURL: 'http://127.0.0.1:1/v1' };
    await expect(sut.chatAnswer(closed, chat(), new AbortController().signal)).rejects.toThrow(
      EngineUnreachable,
    );
  });

  it('should push the same events through forEachEvent as the stream yields (same seed, same answer)', async () => {
    const pulled = await drain((await sut.chatStream(endpoint, chat(), new AbortController().signal)).events);
    const stream = await sut.chatStream(endpoint, chat(), new AbortController().signal);
    const pushed: EngineChatEvent[] = [];

    expect(stream.forEachEvent).toBeDefined();
    await stream.forEachEvent!((e) => pushed.push(e));

    const withoutUsage = (events: EngineChatEvent[]) => events.filter((e) => e.type !== 'usage');
    expect(withoutUsage(pushed)).toEqual(withoutUsage(pulled));
    expect(pushed.at(-1)).toMatchObject({ type: 'usage' });
    expect(pushed.filter((e) => e.type === 'finish')).toHaveLength(1);
  });

  it('should translate a failure of a pushed stream, and pass the consumer’s own error unchanged', async () => {
    sim.engine.setFaults({ cutStreamAfterTokens: 3 });
    const cut = await sut.chatStream(endpoint, chat({ maxTokens: 32 }), new AbortController().signal);
    const failure = await cut.forEachEvent!(() => undefined).catch((e: unknown) => e);
    sim.engine.setFaults({ cutStreamAfterTokens: null });

    expect(failure).toBeInstanceOf(EngineStreamCut);
    expect((failure as EngineStreamCut).extensions).toMatchObject({ replica: endpoint.id });
    expect((failure as Error).message).toMatch(/broke/);

    const mine = new RangeError('the consumer failed');
    const stream = await sut.chatStream(endpoint, chat(), new AbortController().signal);
    await expect(
      stream.forEachEvent!(() => {
        throw mine;
      }),
    ).rejects.toBe(mine);
  });

  it("should send the tenant's cache_salt: the same salt reuses the prefix, another salt does not", async () => {
    const usage = async (cacheSalt: string) => {
      const stream = await sut.chatStream(endpoint, chat({ cacheSalt }), new AbortController().signal);
      const events = await drain(stream.events);
      const found = events.find((e) => e.type === 'usage');
      return found?.type === 'usage' ? found.usage : undefined;
    };

    await usage('tenant-a');
    const same = await usage('tenant-a');
    const other = await usage('tenant-b');

    expect(same?.cachedTokens).toBeGreaterThan(0);
    expect(other?.cachedTokens).toBe(0);
  });

  it('should tokenize text and chat messages with the engine tokenizer', async () => {
    const text = await sut.tokenize(endpoint, model, { prompt: 'What is a prefix cache?' }, 5000);
    const messages = await sut.tokenize(
      endpoint,
      model,
      { messages: [{ role: 'user', content: 'What is a prefix cache?' }] },
      5000,
    );

    expect(text.length).toBeGreaterThan(0);
    expect(messages.length).toBeGreaterThan(text.length);
  });

  it("should read the replica's prefix-cache counters from /metrics", async () => {
    const counters = await sut.scrapeMetrics(endpoint, 5000);

    expect(counters.prefixCacheQueriedTokens).toBeGreaterThan(0);
    expect(counters.prefixCacheHitTokens).toBeGreaterThan(0);
  });

  it('should map an overloaded engine (503) to EngineUnavailable, not EngineUnreachable', async () => {
    sim.engine.setFaults({ errorRate: 1, errorStatus: 503 });

    const error = await sut
      .chatStream(endpoint, chat(), new AbortController().signal)
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(EngineUnavailable);
    expect(error).not.toBeInstanceOf(EngineUnreachable);
  });

  it('should map a refused connection to EngineUnreachable for every call', async () => {
    const closed: EngineEndpoint = { id: 'http://127.0.0.1:1/v1', baseURL: 'http://127.0.0.1:1/v1' };

    await expect(sut.chatStream(closed, chat(), new AbortController().signal)).rejects.toThrow(
      EngineUnreachable,
    );
    await expect(sut.tokenize(closed, model, { prompt: 'x' }, 2000)).rejects.toThrow(EngineUnreachable);
    await expect(sut.models(closed, 2000)).rejects.toThrow(EngineUnreachable);
    await expect(sut.health(closed, 2000)).rejects.toThrow();
  });

  it("should send chat streams, whole answers and /tokenize over its own connections, not the process's global dispatcher", async () => {
    // In the api, the SDK's fetch (/v1/models) installs Node's bundled undici as the global dispatcher,
    // which undici's `request` takes when given none. Here another Agent stands in for it.
    const previousGlobal = getGlobalDispatcher();
    const global = new Agent();
    setGlobalDispatcher(global);
    const own = new VllmEngineAdapter(Object.assign(new InferenceConfig(), { INFERENCE_TIMEOUT_MS: 10_000 }));
    const origin = new URL(endpoint.baseURL).origin;
    // Agent.stats: one PoolStats per origin the agent has connections to.
    const poolOf = (adapter: VllmEngineAdapter) =>
      (adapter as unknown as { engineAgent: Agent }).engineAgent.stats[origin] as
        | { connected: number; free: number; pending: number; running: number }
        | undefined;
    try {
      await own.tokenize(endpoint, model, { prompt: 'What is a prefix cache?' }, 5000);
      await drain((await own.chatStream(endpoint, chat(), new AbortController().signal)).events);
      await own.chatAnswer(endpoint, chat(), new AbortController().signal);

      // The connections are the adapter's, kept alive in its pool once the stream's end is drained.
      expect(poolOf(own)?.connected).toBeGreaterThan(0);
      await until(() => poolOf(own)?.free === poolOf(own)?.connected, 'the engine connections to be idle');
      expect(poolOf(own)).toMatchObject({ running: 0, pending: 0 });
      expect(global.stats[origin]).toBeUndefined();
    } finally {
      setGlobalDispatcher(previousGlobal);
      await Promise.all([own.onApplicationShutdown(), global.close()]);
    }
    expect(poolOf(own)).toBeUndefined();
  });

  it('should say tokenize is unsupported on a server without /tokenize', async () => {
    await expect(sut.tokenize(notVllmEndpoint, model, { prompt: 'x' }, 2000)).rejects.toThrow(
      EngineTokenizeUnsupported,
    );
    await expect(sut.scrapeMetrics(notVllmEndpoint, 2000)).rejects.toThrow(/404/);
  });

  it('should stop the stream when the signal fires (it ends early, never with a finish reason)', async () => {
    const controller = new AbortController();
    const stream = await sut.chatStream(endpoint, chat({ maxTokens: 200 }), controller.signal);
    const seen: EngineChatEvent[] = [];

    const reading = (async () => {
      for await (const e of stream.events) {
        seen.push(e);
        controller.abort();
      }
    })();

    // The SDK ends an aborted stream quietly; a transport may reject instead. Either way no finish arrives.
    await reading.catch(() => undefined);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.filter((e) => e.type === 'finish')).toHaveLength(0);
  });
});
