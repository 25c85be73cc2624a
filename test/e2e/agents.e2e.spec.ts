import { Module } from '@nestjs/common';
import { Agent } from '../../src/agents/agent.decorator';
import { AgentRegistry } from '../../src/agents/agent-registry.service';
import { startEngineSimulator, type RunningSimulator } from '../../src/simulator/simulator.server';
import { postSse } from '../factories/sse';
import { api, startTestApp, type TestApp } from '../factories/test-app';

/** The third agent: one class, listed in a test module, nothing else. */
@Agent({
  name: 'weather',
  description: 'Weather forecasts and current conditions for a place.',
  examples: [
    'What is the weather forecast for Paris tomorrow?',
    'Will it rain in London this weekend?',
    'How hot will it be in Madrid on Friday?',
    'Is it going to snow in Oslo tonight?',
    'Weather forecast for Berlin next week',
  ],
  template: {
    version: 1,
    text: 'Role: weather agent. Answer questions about weather forecasts and conditions.',
  },
})
class WeatherAgent {}

@Module({ providers: [WeatherAgent] })
class WeatherAgentModule {}

/**
 * Agents end to end: one conversation routed to three agents (fallback assistant, summarizer by
 * intent, a test module's agent discovered at boot), each decision stored on its message, and the
 * engine's prefix cache still covering the shared global prefix after each switch.
 */
describe.each(['direct', 'langgraph'])('agents (e2e, AGENT_GRAPH_RUNTIME=%s)', (runtime) => {
  let sim: RunningSimulator;
  let sut: TestApp;

  beforeAll(async () => {
    sim = await startEngineSimulator({ timing: { timeScale: 0 }, replyTokens: { min: 16, max: 32 } });
    sut = await startTestApp(
      { INFERENCE_ENDPOINTS: sim.baseURL, AGENT_ROUTING_FLOOR: '0.4', AGENT_GRAPH_RUNTIME: runtime },
      [WeatherAgentModule],
    );
  });

  afterAll(async () => {
    await sut?.close();
    await sim?.close();
  });

  /** Tokens the engine can serve from cache when the prompt switches from agent `a`'s prefix to `b`'s. */
  const sharedCachedTokens = (a: string, b: string): number => {
    const registry = sut.running.app.get(AgentRegistry);
    const ids = (name: string): number[] =>
      sim.engine.tokenizeChat([{ role: 'system', content: registry.require(name).prefix.text }], false);
    const [x, y] = [ids(a), ids(b)];
    let common = 0;
    while (common < x.length && common < y.length && x[common] === y[common]) common++;
    const block = sim.engine.options.blockSize;
    return Math.floor(common / block) * block;
  };

  const turn = (id: string, content: string) =>
    api(`${sut.url}/v1/conversations/${id}/turns`, {
      key: sut.keyA,
      body: { content, maxTokens: 24, cache: { mode: 'bypass' } },
    });

  it('should list the built-in agents and the one discovered in the test module', async () => {
    const res = await api(`${sut.url}/v1/agents`, { key: sut.keyA });
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual([
      expect.objectContaining({
        name: 'assistant',
        templateVersion: 'global@1+assistant@1',
        routable: false,
        fallback: true,
      }),
      expect.objectContaining({
        name: 'knowledge',
        templateVersion: 'global@1+knowledge@1',
        routable: true,
      }),
      expect.objectContaining({
        name: 'summarizer',
        templateVersion: 'global@1+summarizer@1',
        routable: true,
      }),
      expect.objectContaining({
        name: 'weather',
        description: 'Weather forecasts and current conditions for a place.',
        templateVersion: 'global@1+weather@1',
        routable: true,
        exampleCount: 5,
      }),
    ]);
  });

  it('should route the turns of one conversation to three agents, store each decision and keep the global prefix cached', async () => {
    const created = await api(`${sut.url}/v1/conversations`, { key: sut.keyA, body: { title: 'routing' } });
    const id = created.body.id as string;

    const first = await turn(id, 'What is a KV cache and why does it make chat faster?');
    expect(first.status).toBe(201);
    expect(first.body.assistantMessage.route).toMatchObject({
      agent: 'assistant',
      classifier: 'embedding',
      fallback: true,
      reason: 'below-floor',
    });
    expect(first.body.assistantMessage.route.score).toBeLessThan(0.4);
    expect(first.body.assistantMessage.templateVersion).toBe('global@1+assistant@1');

    const second = await turn(id, 'Summarize our conversation so far');
    expect(second.status).toBe(201);
    expect(second.body.assistantMessage.route).toMatchObject({
      agent: 'summarizer',
      classifier: 'embedding',
      floor: 0.4,
    });
    expect(second.body.assistantMessage.route.fallback).toBeUndefined();
    expect(second.body.assistantMessage.route.score).toBeGreaterThanOrEqual(0.4);
    expect(second.body.assistantMessage.route.candidates[0]).toEqual({
      agent: 'summarizer',
      score: second.body.assistantMessage.route.score,
    });
    expect(second.body.assistantMessage.templateVersion).toBe('global@1+summarizer@1');
    // (b) The switch changed the agent instructions, not the global prefix before them: the engine
    // still serves every full block of the shared prefix from its cache, and nothing after it.
    const shared = sharedCachedTokens('assistant', 'summarizer');
    expect(shared).toBeGreaterThan(0);
    expect(second.body.assistantMessage.usage.cachedTokens).toBeGreaterThanOrEqual(shared);
    expect(second.body.assistantMessage.usage.cachedTokens).toBeLessThan(
      first.body.assistantMessage.usage.promptTokens,
    );

    // (c) The agent of the test module, discovered at boot, is routed to by intent.
    const third = await turn(id, 'Will it rain in Paris tomorrow? What is the forecast?');
    expect(third.status).toBe(201);
    expect(third.body.assistantMessage.route).toMatchObject({ agent: 'weather', classifier: 'embedding' });
    expect(third.body.assistantMessage.templateVersion).toBe('global@1+weather@1');
    expect(third.body.assistantMessage.usage.cachedTokens).toBeGreaterThanOrEqual(
      sharedCachedTokens('summarizer', 'weather'),
    );

    // Back to the assistant: its own earlier prompt (prefix + first turn) is still cached.
    const fourth = await turn(id, 'Thanks. How does prefix caching work in vLLM?');
    expect(fourth.body.assistantMessage.route).toMatchObject({ agent: 'assistant', fallback: true });
    expect(fourth.body.assistantMessage.usage.cachedTokens).toBeGreaterThan(
      first.body.assistantMessage.usage.promptTokens - sim.engine.options.blockSize,
    );

    // (a) Each decision is stored on its assistant message.
    const messages = await api(`${sut.url}/v1/conversations/${id}/messages`, { key: sut.keyA });
    const stored = (messages.body.data as { role: string; route: Record<string, unknown> | null }[]).filter(
      (m) => m.role === 'assistant',
    );
    expect(stored.map((m) => m.route)).toEqual([
      first.body.assistantMessage.route,
      second.body.assistantMessage.route,
      third.body.assistantMessage.route,
      fourth.body.assistantMessage.route,
    ]);
    expect(stored.map((m) => m.route?.agent)).toEqual(['assistant', 'summarizer', 'weather', 'assistant']);
  });

  it('should stream token deltas from the answering agent through the graph', async () => {
    const created = await api(`${sut.url}/v1/conversations`, { key: sut.keyA, body: {} });
    const res = await postSse(`${sut.url}/v1/conversations/${created.body.id}/turns`, sut.keyA, {
      content: 'What is the weather forecast for Berlin on Saturday?',
      stream: true,
      cache: { mode: 'bypass' },
    });
    expect(res.status).toBe(200);
    const tokens = res.events.filter((e) => e.event === 'token');
    const final = res.events.at(-1);
    expect(tokens.length).toBeGreaterThan(1);
    expect(final?.event).toBe('turn');
    expect(final?.data.assistantMessage.route).toMatchObject({ agent: 'weather', classifier: 'embedding' });
    expect(final?.data.assistantMessage.content).toBe(tokens.map((e) => e.data.delta as string).join(''));
  });

  it('should answer with the pinned agent whatever the message, and refuse to pin an unknown agent', async () => {
    const created = await api(`${sut.url}/v1/conversations`, { key: sut.keyA, body: { agent: 'weather' } });
    expect(created.status).toBe(201);
    const res = await turn(created.body.id as string, 'Summarize our conversation so far');
    expect(res.body.assistantMessage.route).toEqual({
      agent: 'weather',
      score: 1,
      classifier: 'pinned',
      // The catalogue target that answered: without a catalogue file, the engine replicas.
      provider: expect.objectContaining({ deployment: 'engine', provider: 'vllm' }),
    });
    expect(res.body.assistantMessage.templateVersion).toBe('global@1+weather@1');

    const unknown = await api(`${sut.url}/v1/conversations`, { key: sut.keyA, body: { agent: 'nobody' } });
    expect(unknown.status).toBe(400);
    expect(unknown.body).toMatchObject({ code: 'AgentNotFound', agent: 'nobody' });
  });

  it('should report the queues at readiness', async () => {
    const res = await api(`${sut.url}/health/ready`);
    expect(res.status).toBe(200);
    expect(res.body.details.queues).toMatchObject({
      status: 'up',
      queues: { summaries: { waiting: 0, failed: 0, stalled: false } },
    });
  });
});
