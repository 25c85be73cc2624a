import OpenAI, { APIError, NotFoundError } from 'openai';
import { startEngineSimulator, type RunningSimulator } from '../../src/simulator/simulator.server';
import { postSse } from '../factories/sse';
import { startTestApp, type TestApp } from '../factories/test-app';

/**
 * POST /v1/chat/completions driven by the unmodified `openai` SDK pointed at kvchat's /v1:
 * models, plain and streamed completions, the response cache (exact, semantic, replayed as an
 * OpenAI stream), isolation, errors, and no caching of a cut stream.
 */
describe('OpenAI-compatible chat completions (e2e)', () => {
  let sim: RunningSimulator;
  let sut: TestApp;
  let client: OpenAI;
  let model: string;

  beforeAll(async () => {
    sim = await startEngineSimulator({ timing: { timeScale: 0 }, replyTokens: { min: 16, max: 32 } });
    sut = await startTestApp({ INFERENCE_ENDPOINTS: sim.baseURL });
    client = new OpenAI({ baseURL: `${sut.url}/v1`, apiKey: sut.keyA, maxRetries: 0 });
    model = (await client.models.list()).data[0].id;
  });
  afterAll(async () => {
    await sut?.close();
    await sim?.close();
  });
  afterEach(() => sim.engine.setFaults({ errorRate: 0, cutStreamAfterTokens: null, stallMs: 0 }));

  const engineRequests = (): number => sim.engine.state().requests.started;
  const user = (content: string): OpenAI.ChatCompletionMessageParam[] => [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content },
  ];
  type Extended = OpenAI.ChatCompletion & { kvchat?: { cache: { response: Record<string, unknown> } } };

  it("should list the served model, then the engine's embedding model", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([model, 'kvchat-sim-lexical-embedding']);
    expect(model).toContain('sim');
  });

  it('should answer, then answer the repeat from the cache with every prompt token reported cached', async () => {
    const { data: first, response } = await client.chat.completions
      .create({ model, messages: user('What is a KV cache?'), max_tokens: 64 })
      .withResponse();
    expect(response.headers.get('x-kvchat-cache')).toBe('miss');
    expect(first).toMatchObject({
      object: 'chat.completion',
      model,
      choices: [{ index: 0, finish_reason: 'stop' }],
    });
    expect(first.id).toMatch(/^chatcmpl-/);
    expect(first.choices[0].message.role).toBe('assistant');
    expect(first.usage?.prompt_tokens).toBeGreaterThan(0);
    expect(first.usage?.total_tokens).toBe(
      (first.usage?.prompt_tokens ?? 0) + (first.usage?.completion_tokens ?? 0),
    );

    const before = engineRequests();
    const { data: again, response: againResponse } = await client.chat.completions
      .create({ model, messages: user('What is a KV cache?'), max_tokens: 64 })
      .withResponse();
    expect(engineRequests()).toBe(before);
    expect(againResponse.headers.get('x-kvchat-cache')).toBe('hit-exact');
    expect(again.choices[0].message.content).toBe(first.choices[0].message.content);
    expect(again.usage?.prompt_tokens_details?.cached_tokens).toBe(again.usage?.prompt_tokens);
    expect(again.usage?.prompt_tokens).toBe(first.usage?.prompt_tokens);
    expect((again as Extended).kvchat?.cache.response).toMatchObject({ hit: true, type: 'exact' });
  });

  it('should stream OpenAI chunks ending in [DONE], and replay a cached answer as the same kind of stream', async () => {
    const ask = async () => {
      const stream = await client.chat.completions.create({
        model,
        messages: user('Explain paged attention'),
        stream: true,
        stream_options: { include_usage: true },
      });
      const chunks: OpenAI.ChatCompletionChunk[] = [];
      for await (const chunk of stream) chunks.push(chunk);
      return chunks;
    };
    const before = engineRequests();
    const live = await ask();
    const replay = await ask();
    expect(engineRequests()).toBe(before + 1);

    for (const chunks of [live, replay]) {
      expect(chunks[0].choices[0].delta.role).toBe('assistant');
      expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === model)).toBe(true);
      expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
      const withChoice = chunks.filter((c) => c.choices.length > 0);
      expect(withChoice.at(-1)?.choices[0].finish_reason).toBe('stop');
      expect(withChoice.slice(0, -1).every((c) => c.choices[0].finish_reason === null)).toBe(true);
      const last = chunks.at(-1);
      expect(last?.choices).toEqual([]);
      expect(last?.usage?.prompt_tokens).toBeGreaterThan(0);
    }
    const text = (chunks: OpenAI.ChatCompletionChunk[]) =>
      chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text(replay)).toBe(text(live));
    expect(text(live).length).toBeGreaterThan(0);
    expect(replay.at(-1)?.usage?.prompt_tokens_details?.cached_tokens).toBe(
      replay.at(-1)?.usage?.prompt_tokens,
    );
    // Same chunk keys, live and replayed.
    expect(Object.keys(replay[1]).sort()).toEqual(Object.keys(live[1]).sort());

    const raw = await postSse(`${sut.url}/v1/chat/completions`, sut.keyA, {
      model,
      messages: user('Explain paged attention'),
      stream: true,
    });
    expect(raw.contentType).toContain('text/event-stream');
    expect(raw.text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(raw.text).not.toContain('event:');
  });

  it('should answer a paraphrase semantically and refuse a close-but-different question', async () => {
    const first = await client.chat.completions.create({
      model,
      messages: user('python sort list ascending'),
    });
    const paraphrase = (await client.chat.completions.create({
      model,
      messages: user('how to sort a list in python ascending'),
    })) as Extended;
    expect(paraphrase.kvchat?.cache.response).toMatchObject({ hit: true, type: 'semantic' });
    expect(paraphrase.choices[0].message.content).toBe(first.choices[0].message.content);
    const different = (await client.chat.completions.create({
      model,
      messages: user('python sort list descending'),
    })) as Extended;
    expect(different.kvchat?.cache.response).toEqual({ hit: false, guard: 'negation' });
  });

  it('should scope answers by system prompt, history, parameters and tenant', async () => {
    const question = 'What is a block hash?';
    await client.chat.completions.create({ model, messages: user(question) });
    const variants: OpenAI.ChatCompletionCreateParamsNonStreaming[] = [
      {
        model,
        messages: [
          { role: 'system', content: 'You are verbose.' },
          { role: 'user', content: question },
        ],
      },
      {
        model,
        messages: [
          { role: 'system', content: 'You are terse.' },
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello' },
          { role: 'user', content: question },
        ],
      },
      { model, messages: user(question), temperature: 0.9 },
      { model, messages: user(question), top_p: 0.5 },
    ];
    for (const body of variants) {
      const response = (await client.chat.completions.create(body)) as Extended;
      expect(response.kvchat?.cache.response.hit).toBe(false);
    }
    const tenantB = new OpenAI({ baseURL: `${sut.url}/v1`, apiKey: sut.keyB, maxRetries: 0 });
    const other = (await tenantB.chat.completions.create({ model, messages: user(question) })) as Extended;
    expect(other.kvchat?.cache.response.hit).toBe(false);
  });

  it('should pass kvchat cache control through the request body', async () => {
    await client.chat.completions.create({ model, messages: user('What is a radix attention?') });
    const bypass = (await client.chat.completions.create({
      model,
      messages: user('What is a radix attention?'),
      // @ts-expect-error kvchat extension, sent in the body as any extra field
      cache: { mode: 'bypass' },
    })) as Extended;
    expect(bypass.kvchat?.cache.response).toEqual({ hit: false });
  });

  it('should raise SDK errors: unknown model (404), invalid body (400), engine failure (502)', async () => {
    await expect(
      client.chat.completions.create({ model: 'gpt-4o', messages: user('hi') }),
    ).rejects.toBeInstanceOf(NotFoundError);
    await expect(
      // @ts-expect-error tools are outside the supported subset
      client.chat.completions.create({ model, messages: user('hi'), tools: [{ type: 'function' }] }),
    ).rejects.toMatchObject({ status: 400 });
    sim.engine.setFaults({ errorRate: 1 });
    await expect(
      client.chat.completions.create({ model, messages: user('fails please') }),
    ).rejects.toMatchObject({
      status: 502,
    });
  });

  it('should raise the error of a cut stream in the SDK and not cache the partial answer', async () => {
    sim.engine.setFaults({ cutStreamAfterTokens: 3 });
    const stream = await client.chat.completions.create({
      model,
      messages: user('Tell me about LMCache tiers'),
      stream: true,
    });
    const received: string[] = [];
    await expect(
      (async () => {
        for await (const chunk of stream) received.push(chunk.choices[0]?.delta.content ?? '');
      })(),
    ).rejects.toBeInstanceOf(APIError);
    expect(received.join('').length).toBeGreaterThan(0);
    sim.engine.setFaults({ cutStreamAfterTokens: null });
    const before = engineRequests();
    const after = (await client.chat.completions.create({
      model,
      messages: user('Tell me about LMCache tiers'),
    })) as Extended;
    expect(engineRequests()).toBe(before + 1);
    expect(after.kvchat?.cache.response.hit).toBe(false);
  });
});
