import { InferenceConfig } from '../../src/config/inference.config';
import { parseCatalogue } from '../../src/inference/catalogue/model-catalogue';
import { EndpointRouter } from '../../src/inference/endpoint-router';
import { EngineBadRequest, EngineStreamCut, EngineUnavailable } from '../../src/inference/inference.errors';
import type { InferenceService } from '../../src/inference/inference.service';
import type { ChatMessage, ChoiceDelta, ProviderRoute } from '../../src/inference/inference.types';
import { type RunningSimulator, startEngineSimulator } from '../../src/simulator/simulator.server';
import { FakeEngineAdapter } from '../fakes/fake-engine-adapter';
import { inferenceService } from '../factories/inference';

/** About 1,500 tokens: past Anthropic's 1,024-token minimum cacheable prefix. */
const STABLE_PREFIX = Array.from(
  { length: 150 },
  (_, i) => `Rule ${i}: answer precisely, cite the knowledge base, and keep the tone plain.`,
).join('\n');

/**
 * Two providers behind one catalogue, both the engine simulator: one impersonating an OpenAI-style API
 * (fault injection answers 429 on command), one speaking the Anthropic Messages API. The adapters use
 * the real `openai` and `@anthropic-ai/sdk` clients over HTTP.
 */
describe('Catalogue providers, fallbacks and prompt caching (simulator, real SDKs)', () => {
  let openaiSim: RunningSimulator;
  let anthropicSim: RunningSimulator;
  let model: string;

  beforeAll(async () => {
    [openaiSim, anthropicSim] = await Promise.all([
      startEngineSimulator({ timing: { timeScale: 0 }, replyTokens: { min: 8, max: 16 } }),
      startEngineSimulator({ timing: { timeScale: 0 }, replyTokens: { min: 8, max: 16 } }),
    ]);
    model = openaiSim.engine.options.model;
  });

  afterAll(async () => {
    await Promise.all([openaiSim.close(), anthropicSim.close()]);
  });

  afterEach(() => {
    openaiSim.engine.setFaults({ errorRate: 0, errorStatus: 500, retryAfterSeconds: null });
    jest.restoreAllMocks();
  });

  function build(overrides: Partial<InferenceConfig> = {}): InferenceService {
    const config = Object.assign(new InferenceConfig(), { INFERENCE_MODEL: model }, overrides);
    const engine = new FakeEngineAdapter();
    const router = new EndpointRouter(
      { baseURLs: ['http://unused:1/v1'], simulated: true, close: () => Promise.resolve() },
      config,
      engine,
    );
    const catalogue = parseCatalogue(
      `
models:
  chat:
    deployments:
      - id: openai-a
        provider: openai
        model: ${model}
        baseURL: ${openaiSim.baseURL}
        weight: 1
      - id: anthropic-b
        provider: anthropic
        model: claude-sim-sonnet
        baseURL: ${anthropicSim.url}
        apiKeyEnv: SIM_ANTHROPIC_KEY
        weight: 0
  claude:
    deployments:
      - id: anthropic-only
        provider: anthropic
        model: claude-sim-sonnet
        baseURL: ${anthropicSim.url}
`,
      'test catalogue',
      { SIM_ANTHROPIC_KEY: 'sk-ant-test' },
    );
    return inferenceService(router, config, engine, catalogue);
  }

  const question = (text: string): ChatMessage[] => [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: text },
  ];

  const weatherTool = {
    type: 'function',
    function: {
      name: 'get_weather',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  };

  it('should forward tools, tool_choice and n to an OpenAI-compatible deployment, routing at the first tool-call delta', async () => {
    const sut = build();
    const order: string[] = [];

    const result = await sut.chat({
      model: 'chat',
      messages: question('What is the weather in Oslo?'),
      maxTokens: 32,
      extra: {
        tools: [weatherTool],
        tool_choice: { type: 'function', function: { name: 'get_weather' } },
        n: 2,
      },
      onProviderRoute: (route: ProviderRoute) => order.push(`route:${route.deployment}`),
      onChoiceDelta: (d: ChoiceDelta) => order.push(d.type),
    });

    expect(result.provider?.deployment).toBe('openai-a');
    expect(result.choices).toHaveLength(2);
    for (const choice of result.choices ?? []) {
      expect(choice.finishReason).toBe('tool_calls');
      expect(choice.toolCalls[0].function.name).toBe('get_weather');
      expect(JSON.parse(choice.toolCalls[0].function.arguments)).toEqual({ city: 'Oslo' });
    }
    // The route goes out once, before the first piece of the answer (here a tool call, not text).
    expect(order[0]).toBe('route:openai-a');
    expect(order.filter((o) => o.startsWith('route:'))).toHaveLength(1);
    expect(order[1]).toBe('tool_call');
  });

  it('should forward logprobs to an OpenAI-compatible deployment', async () => {
    const sut = build();

    const result = await sut.chat({
      model: 'chat',
      messages: question('What is a KV block?'),
      maxTokens: 8,
      extra: { logprobs: true, top_logprobs: 2 },
    });

    const logprobs = result.choices?.[0].logprobs ?? [];
    expect(logprobs.length).toBeGreaterThan(0);
    expect(logprobs[0].top_logprobs).toHaveLength(2);
  });

  it('should translate a tools round-trip to and from Anthropic (tool_use, tool_result, stop reasons)', async () => {
    const sut = build();
    const messages = question('Please get weather for Lisbon');

    const call = await sut.chat({
      model: 'claude',
      messages,
      maxTokens: 32,
      extra: { tools: [weatherTool], tool_choice: 'auto', response_format: { type: 'json_object' }, seed: 7 },
    });
    const toolCall = call.choices?.[0].toolCalls[0];

    expect(call.finishReason).toBe('tool_calls');
    expect(toolCall?.id).toMatch(/^toolu_/);
    expect(toolCall?.function.name).toBe('get_weather');
    expect(JSON.parse(toolCall?.function.arguments ?? '')).toEqual({ city: 'Lisbon' });

    const answer = await sut.chat({
      model: 'claude',
      messages: [
        ...messages,
        { role: 'assistant', content: '', tool_calls: toolCall ? [toolCall] : [] },
        { role: 'tool', content: '{"temperature_c": 19}', tool_call_id: toolCall?.id ?? '' },
      ],
      // Replies are 8..16 tokens, chosen from the prompt (which holds the random tool-use id): 32 leaves room for the
      // longest reply (16) and its end-of-sequence token, so the answer always ends by itself.
      maxTokens: 32,
      extra: { tools: [weatherTool] },
    });

    expect(answer.finishReason).toBe('stop');
    expect(answer.content.length).toBeGreaterThan(0);
    expect(answer.choices?.[0].toolCalls).toEqual([]);
  });

  it('should refuse n > 1 on an Anthropic deployment with a 400 naming n', async () => {
    const sut = build();

    const failed = sut.chat({
      model: 'claude',
      messages: question('Two answers?'),
      maxTokens: 8,
      extra: { n: 2 },
    });

    await expect(failed).rejects.toBeInstanceOf(EngineBadRequest);
    await expect(failed).rejects.toMatchObject({ extensions: { field: 'n' } });
  });

  it('should answer from the second provider when the first answers 429, naming both attempts', async () => {
    const sut = build();
    openaiSim.engine.setFaults({ errorRate: 1, errorStatus: 429 });
    const tokens: string[] = [];

    const result = await sut.chat({
      model: 'chat',
      messages: question('What is a KV cache?'),
      maxTokens: 8,
      onToken: (t) => tokens.push(t),
    });

    expect(result.content.length).toBeGreaterThan(0);
    expect(tokens.join('')).toBe(result.content);
    expect(result.model).toBe('chat');
    expect(result.provider).toMatchObject({
      model: 'chat',
      deployment: 'anthropic-b',
      provider: 'anthropic',
      upstreamModel: 'claude-sim-sonnet',
    });
    expect(result.provider?.attempts.map((a) => [a.deployment, a.outcome, a.status])).toEqual([
      ['openai-a', 'failed', 429],
      ['anthropic-b', 'ok', undefined],
    ]);
  });

  it('should skip a circuit-broken deployment until its cool-down ends, then try it again', async () => {
    const sut = build({ PROVIDER_BREAKER_FAILURES: 1, PROVIDER_BREAKER_COOLDOWN_MS: 60_000 });
    openaiSim.engine.setFaults({ errorRate: 1, errorStatus: 500 });
    await sut.chat({ model: 'chat', messages: question('one'), maxTokens: 4 });
    openaiSim.engine.setFaults({ errorRate: 0 });
    const startedBefore = openaiSim.engine.state().requests.started;

    const during = await sut.chat({ model: 'chat', messages: question('two'), maxTokens: 4 });

    expect(during.provider?.attempts.map((a) => [a.deployment, a.outcome, a.reason])).toEqual([
      ['openai-a', 'skipped', 'circuit-open'],
      ['anthropic-b', 'ok', undefined],
    ]);
    expect(openaiSim.engine.state().requests.started).toBe(startedBefore); // not even asked

    // The cool-down is measured on Date.now (cockatiel): move the clock past it instead of waiting.
    const now = Date.now();
    jest.spyOn(Date, 'now').mockImplementation(() => now + 61_000);
    const after = await sut.chat({ model: 'chat', messages: question('three'), maxTokens: 4 });

    expect(after.provider?.deployment).toBe('openai-a');
    expect(after.provider?.attempts).toHaveLength(1);
  });

  it("should honour Retry-After: the deployment is skipped while the upstream's delay runs", async () => {
    const sut = build({ PROVIDER_BREAKER_FAILURES: 10 });
    openaiSim.engine.setFaults({ errorRate: 1, errorStatus: 429, retryAfterSeconds: 30 });
    const first = await sut.chat({ model: 'chat', messages: question('one'), maxTokens: 4 });
    openaiSim.engine.setFaults({ errorRate: 0, retryAfterSeconds: null });

    const second = await sut.chat({ model: 'chat', messages: question('two'), maxTokens: 4 });

    expect(first.provider?.attempts[0]).toMatchObject({
      deployment: 'openai-a',
      outcome: 'failed',
      status: 429,
    });
    expect(second.provider?.attempts[0]).toMatchObject({ deployment: 'openai-a', outcome: 'skipped' });
    expect(second.provider?.deployment).toBe('anthropic-b');
  });

  it('should not fall back once a token reached the caller', async () => {
    const sut = build();
    openaiSim.engine.setFaults({ cutStreamAfterTokens: 2 });
    try {
      await expect(
        sut.chat({ model: 'chat', messages: question('cut'), maxTokens: 8 }),
      ).rejects.toBeInstanceOf(EngineStreamCut);
    } finally {
      openaiSim.engine.setFaults({ cutStreamAfterTokens: null });
    }
  });

  it('should fail with EngineUnavailable naming every attempt when all targets refuse', async () => {
    const sut = build();
    openaiSim.engine.setFaults({ errorRate: 1, errorStatus: 503 });
    anthropicSim.engine.setFaults({ errorRate: 1, errorStatus: 529 });
    try {
      const error = await sut
        .chat({ model: 'chat', messages: question('x'), maxTokens: 4 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EngineUnavailable);
      expect((error as EngineUnavailable).extensions.attempts).toEqual([
        expect.objectContaining({ deployment: 'openai-a', outcome: 'failed', status: 503 }),
        expect.objectContaining({ deployment: 'anthropic-b', outcome: 'failed', status: 529 }),
      ]);
    } finally {
      anthropicSim.engine.setFaults({ errorRate: 0, errorStatus: 500 });
    }
  });

  it('should stream a multi-turn conversation through Anthropic and read the stable prefix and history from its prompt cache', async () => {
    const sut = build();
    const system: ChatMessage = { role: 'system', content: STABLE_PREFIX };
    const turn = async (messages: ChatMessage[]) => {
      const tokens: string[] = [];
      const result = await sut.chat({
        model: 'claude',
        messages,
        maxTokens: 12,
        onToken: (t) => tokens.push(t),
      });
      expect(tokens.length).toBeGreaterThan(0); // streamed
      expect(tokens.join('')).toBe(result.content);
      return result;
    };

    const history: ChatMessage[] = [system, { role: 'user', content: 'What does a prefix cache keep?' }];
    const one = await turn(history);
    history.push({ role: 'assistant', content: one.content }, { role: 'user', content: 'And for how long?' });
    const two = await turn(history);
    history.push(
      { role: 'assistant', content: two.content },
      { role: 'user', content: 'Thanks. Summarise.' },
    );
    const three = await turn(history);

    // Turn 1 writes the stable prefix and the first question (both past the 1,024-token minimum).
    expect(one.usage.cachedTokens).toBe(0);
    expect(one.usage.cacheWriteTokens).toBeGreaterThan(1024);
    // Turn 2 reads all of it back: the stable prefix and the history that turn 1 sent.
    expect(two.usage.cachedTokens).toBe(one.usage.cacheWriteTokens);
    expect(two.usage.promptTokens).toBeGreaterThan(two.usage.cachedTokens);
    // Turn 3 reads what turn 2 wrote: the prefix plus the whole history up to turn 2's question.
    expect(three.usage.cachedTokens).toBe((two.usage.cachedTokens ?? 0) + (two.usage.cacheWriteTokens ?? 0));
    expect(three.usage.cachedTokens).toBeGreaterThan(two.usage.cachedTokens);
    expect(three.provider?.provider).toBe('anthropic');
  });
});
