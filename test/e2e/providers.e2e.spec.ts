import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { NotFoundError } from 'openai';
import { type RunningSimulator, startEngineSimulator } from '../../src/simulator/simulator.server';
import { api, startTestApp, type TestApp } from '../factories/test-app';

interface TurnBody {
  assistantMessage: {
    model: string;
    usage: { promptTokens: number; cachedTokens: number; cacheWriteTokens?: number };
    route: {
      provider?: {
        deployment: string;
        provider: string;
        attempts: { deployment: string; outcome: string }[];
      };
    };
  };
}

/**
 * The whole app with a model catalogue of two providers: the engine simulator impersonating an
 * OpenAI-style API (429 on command) and the simulator's Anthropic Messages mode as the fallback,
 * driven by the unmodified `openai` SDK on /v1.
 */
describe('Model catalogue and fallbacks on /v1 (e2e)', () => {
  let openaiSim: RunningSimulator;
  let anthropicSim: RunningSimulator;
  let sut: TestApp;
  let client: OpenAI;
  let dir: string;

  beforeAll(async () => {
    [openaiSim, anthropicSim] = await Promise.all([
      startEngineSimulator({ timing: { timeScale: 0 }, replyTokens: { min: 8, max: 16 } }),
      // The assistant agent's stable prefix is shorter than Anthropic's 1,024-token minimum: lower it.
      startEngineSimulator({
        timing: { timeScale: 0 },
        replyTokens: { min: 8, max: 16 },
        promptCaching: { minTokens: 64 },
      }),
    ]);
    dir = mkdtempSync(join(tmpdir(), 'kvchat-providers-'));
    const catalogue = join(dir, 'models.yaml');
    writeFileSync(
      catalogue,
      `
models:
  claude:
    deployments:
      - id: anthropic-b
        provider: anthropic
        model: claude-sim-sonnet
        baseURL: ${anthropicSim.url}
        apiKeyEnv: E2E_ANTHROPIC_KEY
  chat:
    fallbacks: [claude]
    deployments:
      - id: openai-a
        provider: openai
        model: ${openaiSim.engine.options.model}
        baseURL: ${openaiSim.baseURL}
        apiKeyEnv: E2E_OPENAI_KEY
        prices: { input: 0.15, cachedInput: 0.075, output: 0.6 }
`,
    );
    sut = await startTestApp({
      INFERENCE_ENDPOINTS: openaiSim.baseURL,
      MODEL_CATALOGUE_PATH: catalogue,
      E2E_OPENAI_KEY: 'sk-e2e',
      E2E_ANTHROPIC_KEY: 'sk-ant-e2e',
    });
    client = new OpenAI({ baseURL: `${sut.url}/v1`, apiKey: sut.keyA, maxRetries: 0 });
  });

  afterAll(async () => {
    await sut?.close();
    await Promise.all([openaiSim?.close(), anthropicSim?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  afterEach(() => openaiSim.engine.setFaults({ errorRate: 0, errorStatus: 500 }));

  const ask = (content: string): OpenAI.ChatCompletionMessageParam[] => [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content },
  ];

  it("should list the catalogue's public models", async () => {
    const models = await client.models.list();

    // The catalogue's names first, then the engine's embedding models.
    expect(models.data.map((m) => m.id).slice(0, 2)).toEqual(['claude', 'chat']);
  });

  it('should run a tools round-trip with the openai SDK through an Anthropic catalogue model', async () => {
    const tools: OpenAI.ChatCompletionTool[] = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'The weather in a city',
          parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
      },
    ];
    const messages: OpenAI.ChatCompletionMessageParam[] = ask('Please get weather for Paris');

    const first = await client.chat.completions
      .create({ model: 'claude', messages, tools, tool_choice: 'auto', max_tokens: 32 })
      .withResponse();
    const call = first.data.choices[0].message.tool_calls?.[0];

    expect(first.response.headers.get('x-kvchat-provider')).toBe('anthropic');
    expect(first.data.choices[0].finish_reason).toBe('tool_calls');
    expect(call?.type).toBe('function');
    if (call?.type !== 'function') throw new Error('no function tool call');
    expect(call.function.name).toBe('get_weather');
    expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Paris' });

    const stream = await client.chat.completions.create({
      model: 'claude',
      messages: [
        ...messages,
        { role: 'assistant', content: null, tool_calls: [call] },
        { role: 'tool', tool_call_id: call.id, content: '{"temperature_c": 21}' },
      ],
      tools,
      max_tokens: 32,
      stream: true,
    });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }

    expect(text.length).toBeGreaterThan(0);
    expect(finish).toBe('stop');
  });

  it('should answer once from the fallback when the first provider answers 429, naming both attempts', async () => {
    openaiSim.engine.setFaults({ errorRate: 1, errorStatus: 429 });

    const { data, response } = await client.chat.completions
      .create({ model: 'chat', messages: ask('What is a prefix cache?'), max_tokens: 16 })
      .withResponse();

    expect(data.model).toBe('chat');
    expect(data.choices[0].message.content?.length).toBeGreaterThan(0);
    expect(response.headers.get('x-kvchat-attempts')).toBe('openai-a=429,anthropic-b=ok');
    expect(response.headers.get('x-kvchat-deployment')).toBe('anthropic-b');
    expect(response.headers.get('x-kvchat-provider')).toBe('anthropic');
    expect(response.headers.get('x-kvchat-upstream-model')).toBe('claude-sim-sonnet');
  });

  it('should name the attempts on a stream too, before its first byte', async () => {
    openaiSim.engine.setFaults({ errorRate: 1, errorStatus: 429 });

    const { data: stream, response } = await client.chat.completions
      .create({ model: 'chat', messages: ask('And a KV block?'), max_tokens: 16, stream: true })
      .withResponse();
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';

    expect(text.length).toBeGreaterThan(0);
    expect(response.headers.get('x-kvchat-attempts')).toBe('openai-a=429,anthropic-b=ok');
  });

  it('should answer from the first provider when it is healthy, and count every attempt in /metrics', async () => {
    const { response } = await client.chat.completions
      .create({ model: 'chat', messages: ask('What is TTFT?'), max_tokens: 16 })
      .withResponse();
    const metrics = await (await fetch(`${sut.url}/metrics`)).text();

    expect(response.headers.get('x-kvchat-attempts')).toBe('openai-a=ok');
    expect(metrics).toMatch(
      /kvchat_provider_attempts_total\{model="chat",deployment="openai-a",provider="openai",outcome="failed",reason=""\} 2/,
    );
    expect(metrics).toMatch(
      /kvchat_provider_attempts_total\{model="chat",deployment="anthropic-b",provider="anthropic",outcome="ok",reason=""\} 2/,
    );
  });

  it("should run a conversation's turns on the default model (Anthropic) and read its prompt cache on turn 2", async () => {
    const created = await api<{ id: string }>(`${sut.url}/v1/conversations`, {
      key: sut.keyA,
      body: { title: 'providers', agent: 'assistant' },
    });
    const turn = async (content: string) => {
      const res = await api<TurnBody>(`${sut.url}/v1/conversations/${created.body.id}/turns`, {
        key: sut.keyA,
        body: { content, maxTokens: 16 },
      });
      expect(res.status).toBe(201);
      return res.body.assistantMessage;
    };

    const one = await turn('What does a prefix cache keep between turns?');
    const two = await turn('And which provider answered this one?');

    expect(one.model).toBe('claude');
    expect(one.route.provider).toMatchObject({ deployment: 'anthropic-b', provider: 'anthropic' });
    expect(one.usage.cachedTokens).toBe(0);
    expect(one.usage.cacheWriteTokens).toBeGreaterThan(0);
    // Turn 2 reads what turn 1 wrote: the stable prefix and the history turn 1 sent.
    expect(two.usage.cachedTokens).toBe(one.usage.cacheWriteTokens);
    expect(two.route.provider?.attempts).toEqual([
      expect.objectContaining({ deployment: 'anthropic-b', outcome: 'ok' }),
    ]);
  });

  it('should answer 404 naming the served models for a model the catalogue does not list', async () => {
    const error = await client.chat.completions
      .create({ model: 'gpt-4o', messages: ask('hi'), max_tokens: 4 })
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(NotFoundError);
  });
});
