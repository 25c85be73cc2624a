import OpenAI, { APIError } from 'openai';
import { UsageRecorder } from '../../src/usage/usage-recorder.service';
import type { UsageInput } from '../../src/usage/usage.types';
import type { FastifyInstance } from 'fastify';
import { SimulatedEngine } from '../../src/simulator/simulated-engine';
import { buildSimulatorApp } from '../../src/simulator/simulator.server';
import { resolveSimulatorOptions } from '../../src/simulator/simulator.options';
import { startTestApp, type TestApp } from '../factories/test-app';

/**
 * The official `openai` SDK against kvchat with nothing changed but `baseURL`: create, stream, a tools
 * round-trip (tool call -> tool message -> answer), n, logprobs, response_format, embeddings (float and
 * the SDK's default base64), and error messages that are the server's text (401, 403, 404, 400 naming
 * the field). Each request is counted in Prometheus and the usage ledger.
 */
describe('OpenAI SDK against kvchat (e2e)', () => {
  let engine: SimulatedEngine;
  let simApp: FastifyInstance;
  let sut: TestApp;
  /** Every chat request body the engine received, in order. */
  const engineBodies: Record<string, unknown>[] = [];
  let client: OpenAI;
  let model: string;
  let embeddingModel: string;
  const recorded: UsageInput[] = [];

  beforeAll(async () => {
    engine = await SimulatedEngine.create(
      resolveSimulatorOptions({ timing: { timeScale: 0 }, replyTokens: { min: 8, max: 24 } }),
    );
    simApp = buildSimulatorApp(engine);
    simApp.addHook('preHandler', (request, _reply, done) => {
      if (request.url === '/v1/chat/completions') engineBodies.push(request.body as Record<string, unknown>);
      done();
    });
    const simURL = await simApp.listen({ host: '127.0.0.1', port: 0 });
    sut = await startTestApp({ INFERENCE_ENDPOINTS: `${simURL}/v1` });
    const recorder = sut.running.app.get(UsageRecorder);
    const record = recorder.record.bind(recorder);
    jest.spyOn(recorder, 'record').mockImplementation((input) => {
      recorded.push(input);
      return record(input);
    });
    client = new OpenAI({ baseURL: `${sut.url}/v1`, apiKey: sut.keyA, maxRetries: 0 });
    const ids = (await client.models.list()).data.map((m) => m.id);
    model = ids[0];
    embeddingModel = ids.find((id) => id.includes('embed')) ?? '';
  });
  afterAll(async () => {
    await sut?.close();
    await simApp?.close();
    await engine?.close();
  });

  const engineRequests = (): number => engine.state().requests.started;
  const failure = async (call: Promise<unknown>): Promise<APIError> => {
    const error = await call.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(APIError);
    return error as APIError;
  };
  const weather: OpenAI.ChatCompletionTool = {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'The current weather of a city.',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
        required: ['city', 'unit'],
      },
    },
  };
  const clock: OpenAI.ChatCompletionTool = {
    type: 'function',
    function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } } } },
  };

  it('should list the chat model and the embedding model', () => {
    expect(model).toContain('sim');
    expect(embeddingModel).toContain('embed');
  });

  it('should create and stream a completion', async () => {
    const created = await client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'What does a prefix cache keep?' }],
      user: 'end-user-1',
      metadata: { purpose: 'e2e' },
      store: false,
      seed: 7,
      stop: ['\n\n\n'],
    });
    expect(created.choices[0]).toMatchObject({ index: 0, finish_reason: 'stop' });
    expect(created.choices[0].message.content?.length).toBeGreaterThan(0);

    const stream = client.chat.completions.stream({
      model,
      messages: [{ role: 'user', content: 'What does LMCache offload?' }],
      stream_options: { include_usage: true },
    });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0].message.content?.length).toBeGreaterThan(0);
    expect(final.choices[0].finish_reason).toBe('stop');
    expect(final.usage?.prompt_tokens).toBeGreaterThan(0);
  });

  it('should run a tools round-trip: tool call, tool message, answer', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'system', content: 'You can look the weather up.' },
      { role: 'user', content: 'Please use get_weather: how warm is it in Paris today?' },
    ];
    const call = await client.chat.completions.create({
      model,
      messages,
      tools: [weather, clock],
      tool_choice: 'auto',
      parallel_tool_calls: false,
    });
    const choice = call.choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    const toolCall = choice.message.tool_calls?.[0];
    expect(toolCall).toMatchObject({ type: 'function', function: { name: 'get_weather' } });
    expect(toolCall?.id).toMatch(/^call_/);
    const args = JSON.parse(
      (toolCall as OpenAI.ChatCompletionMessageFunctionToolCall).function.arguments,
    ) as {
      city: string;
      unit: string;
    };
    expect(args).toEqual({ city: 'Paris', unit: 'celsius' });

    const answer = await client.chat.completions.create({
      model,
      messages: [
        ...messages,
        choice.message as OpenAI.ChatCompletionAssistantMessageParam,
        { role: 'tool', tool_call_id: toolCall?.id ?? '', content: '{"temperature": 21, "unit": "celsius"}' },
      ],
      tools: [weather, clock],
    });
    expect(answer.choices[0].finish_reason).toBe('stop');
    expect(answer.choices[0].message.content?.length).toBeGreaterThan(0);
    expect(answer.choices[0].message.tool_calls ?? []).toEqual([]);
  });

  it('should stream a tool call that the SDK assembles, named by tool_choice', async () => {
    const stream = client.chat.completions.stream({
      model,
      messages: [{ role: 'user', content: 'What time is it in Tokyo?' }],
      tools: [weather, clock],
      tool_choice: { type: 'function', function: { name: 'get_time' } },
    });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0].finish_reason).toBe('tool_calls');
    const toolCall = final.choices[0].message.tool_calls?.[0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(toolCall.function.name).toBe('get_time');
    expect(JSON.parse(toolCall.function.arguments)).toEqual({ zone: 'Tokyo' });
  });

  it('should replay text and tool calls only to the identical tool set, tool calls with fresh ids', async () => {
    const ask = (tools: OpenAI.ChatCompletionTool[]) =>
      client.chat.completions
        .create({ model, messages: [{ role: 'user', content: 'Say hello to the team' }], tools })
        .withResponse();
    expect((await ask([weather])).response.headers.get('x-kvchat-cache')).toBe('miss');
    expect((await ask([weather])).response.headers.get('x-kvchat-cache')).toBe('hit-exact');
    expect((await ask([weather, clock])).response.headers.get('x-kvchat-cache')).toBe('miss');

    const callWeather = (tools: OpenAI.ChatCompletionTool[]) =>
      client.chat.completions
        .create({ model, messages: [{ role: 'user', content: 'Use get_weather for Oslo' }], tools })
        .withResponse();
    const live = await callWeather([weather]);
    expect(live.response.headers.get('x-kvchat-cache')).toBe('miss');
    const before = engineRequests();
    const replayed = await callWeather([weather]);
    expect(engineRequests()).toBe(before);
    expect(replayed.response.headers.get('x-kvchat-cache')).toBe('hit-exact');
    expect(replayed.data.choices[0].finish_reason).toBe('tool_calls');
    const [liveCall] = live.data.choices[0].message
      .tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[];
    const [replayedCall] = replayed.data.choices[0].message
      .tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[];
    expect(replayedCall.function).toEqual(liveCall.function);
    expect(replayedCall.id).not.toBe(liveCall.id);

    // Streamed, the replay is the same kind of stream the SDK assembles.
    const streamed = await client.chat.completions
      .stream({ model, messages: [{ role: 'user', content: 'Use get_weather for Oslo' }], tools: [weather] })
      .finalChatCompletion();
    expect(
      (streamed.choices[0].message.tool_calls?.[0] as OpenAI.ChatCompletionMessageFunctionToolCall).function,
    ).toEqual(liveCall.function);
    expect(engineRequests()).toBe(before);

    // Another tool set is another scope: the engine answers.
    expect((await callWeather([weather, clock])).response.headers.get('x-kvchat-cache')).toBe('miss');
    expect(engineRequests()).toBe(before + 1);
  });

  it('should answer n choices with logprobs, and never from the cache', async () => {
    const ask = () =>
      client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: 'Name a cache eviction policy' }],
        n: 3,
        logprobs: true,
        top_logprobs: 2,
      });
    const first = await ask();
    expect(first.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(new Set(first.choices.map((c) => c.message.content)).size).toBeGreaterThan(1);
    const logprobs = first.choices[0].logprobs?.content ?? [];
    expect(logprobs.length).toBeGreaterThan(0);
    expect(logprobs.map((l) => l.token).join('')).toBe(first.choices[0].message.content);
    expect(logprobs[0].top_logprobs).toHaveLength(2);
    expect(logprobs[0].logprob).toBeLessThanOrEqual(0);
    const before = engineRequests();
    await ask();
    expect(engineRequests()).toBe(before + 3);
  });

  it('should answer JSON for response_format json_schema', async () => {
    const res = await client.chat.completions.create({
      model,
      messages: [
        { role: 'user', content: 'Give me the capital of Italy, Rome, with its population 2750000' },
      ],
      response_format: {
        type: 'json_schema',
        json_schema: {
          name: 'city',
          schema: {
            type: 'object',
            properties: { name: { type: 'string' }, population: { type: 'integer' } },
            required: ['name', 'population'],
          },
        },
      },
    });
    expect(JSON.parse(res.choices[0].message.content ?? '')).toEqual({ name: 'Rome', population: 2750000 });
  });

  it("should pass the OpenAI fields and unknown vendor fields on to the engine, with the server's cache_salt", async () => {
    const res = await client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'Hello there' }],
      tools: [weather],
      tool_choice: 'none',
      response_format: { type: 'text' },
      reasoning_effort: 'low',
      user: 'end-user-2',
      metadata: { run: 'e2e' },
      store: false,
      // vLLM sampling extensions: not in the OpenAI API, forwarded as sent.
      ...({ top_k: 20, repetition_penalty: 1.05 } as object),
    });
    expect(res.choices[0].finish_reason).toBe('stop');
    const sent = engineBodies[engineBodies.length - 1];
    expect(sent).toMatchObject({
      model,
      tools: [weather],
      tool_choice: 'none',
      response_format: { type: 'text' },
      reasoning_effort: 'low',
      user: 'end-user-2',
      metadata: { run: 'e2e' },
      store: false,
      top_k: 20,
      repetition_penalty: 1.05,
      // A client that does not stream: the engine is asked for one JSON answer.
      stream: false,
    });
    expect(sent).not.toHaveProperty('stream_options');
    expect(typeof sent.cache_salt).toBe('string');
    expect(sent).not.toHaveProperty('cache');
  });

  it('should ask the engine for one JSON answer when the client does not stream, then store it and record its usage', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'user', content: 'What does a whole-answer engine call save?' },
    ];
    const bodies = engineBodies.length;
    const { data: first, response } = await client.chat.completions
      .create({ model, messages, max_tokens: 64 })
      .withResponse();
    expect(response.headers.get('x-kvchat-cache')).toBe('miss');
    expect(engineBodies).toHaveLength(bodies + 1);
    expect(engineBodies[bodies]).toMatchObject({ stream: false, max_tokens: 64 });
    expect(engineBodies[bodies]).not.toHaveProperty('stream_options');
    expect(first.choices[0]).toMatchObject({ index: 0, finish_reason: 'stop' });
    expect(first.choices[0].message.content?.length).toBeGreaterThan(0);
    // The engine's usage, with its prefix-cache field, reaches the client and the usage ledger.
    expect(first.usage?.prompt_tokens).toBeGreaterThan(0);
    expect(first.usage?.completion_tokens).toBeGreaterThan(0);
    expect(first.usage?.prompt_tokens_details?.cached_tokens).toBeGreaterThanOrEqual(0);
    const record = recorded.find(
      (r) => r.endpoint === 'chat.completions' && r.requestId === response.headers.get('x-request-id'),
    );
    expect(record).toMatchObject({
      tenantId: sut.tenantA,
      promptTokens: first.usage?.prompt_tokens,
      completionTokens: first.usage?.completion_tokens,
      cachedTokens: first.usage?.prompt_tokens_details?.cached_tokens,
    });
    expect(record?.ttftMs).toBeGreaterThan(0);

    // Stored: the repeat is an exact hit, without the engine.
    const { data: again, response: hit } = await client.chat.completions
      .create({ model, messages, max_tokens: 64 })
      .withResponse();
    expect(hit.headers.get('x-kvchat-cache')).toBe('hit-exact');
    expect(engineBodies).toHaveLength(bodies + 1);
    expect(again.choices[0].message.content).toBe(first.choices[0].message.content);

    // A streamed client still streams from the engine.
    const stream = await client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'And what does a stream cost?' }],
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text.length).toBeGreaterThan(0);
    expect(engineBodies.at(-1)).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it('should answer a non-streamed request with a fast 503 naming the engine when the engine is unavailable', async () => {
    engine.setFaults({ errorRate: 1, errorStatus: 503 });
    try {
      const started = performance.now();
      const error = await failure(
        client.chat.completions.create({
          model,
          messages: [{ role: 'user', content: 'Is anyone there?' }],
          cache: { mode: 'bypass' },
        } as OpenAI.ChatCompletionCreateParamsNonStreaming),
      );
      expect(performance.now() - started).toBeLessThan(2000);
      expect(error.status).toBe(503);
      // The engine is named (its address is not: "an internal service"), with the OpenAI error code.
      expect(error.message).toMatch(/The engine at .+ is overloaded or unavailable \(503\)/);
      expect(error.code).toBe('engine_unavailable');
      expect(engineBodies.at(-1)).toMatchObject({ stream: false });
    } finally {
      engine.setFaults({ errorRate: 0, errorStatus: 500 });
    }
  });

  it('should embed, answer repeats from the embeddings cache, and decode the SDK default base64', async () => {
    const texts = ['KV cache blocks', 'prefix caching in vLLM'];
    const first = await client.embeddings
      .create({ model: embeddingModel, input: texts, encoding_format: 'float' })
      .withResponse();
    expect(first.response.headers.get('x-kvchat-cache')).toBe('miss');
    expect(first.data.data).toHaveLength(2);
    expect(first.data.usage.prompt_tokens).toBeGreaterThan(0);
    const dimension = first.data.data[0].embedding.length;
    expect(dimension).toBeGreaterThan(8);

    const before = engineRequests();
    // The SDK asks for base64 by default and decodes it to floats.
    const again = await client.embeddings
      .create({ model: embeddingModel, input: [texts[1], 'a third text', texts[0]] })
      .withResponse();
    expect(again.response.headers.get('x-kvchat-cache')).toBe('partial');
    expect(again.data.data[0].embedding).toEqual(first.data.data[1].embedding);
    expect(again.data.data[2].embedding).toEqual(first.data.data[0].embedding);
    expect(again.data.data[1].embedding).toHaveLength(dimension);

    const cached = await client.embeddings
      .create({ model: embeddingModel, input: 'KV cache blocks' })
      .withResponse();
    expect(cached.response.headers.get('x-kvchat-cache')).toBe('hit-exact');
    expect(cached.data.usage.prompt_tokens).toBe(0);
    expect(cached.data.data[0].embedding).toEqual(first.data.data[0].embedding);
    expect(engineRequests()).toBe(before); // embeddings are not generations: the engine's chat counter stays
  });

  it("should raise the server's text as the SDK error message: 401, 403, 404, 400 naming the field", async () => {
    const anonymous = new OpenAI({ baseURL: `${sut.url}/v1`, apiKey: 'kvc_not-a-key', maxRetries: 0 });
    const unauthorized = await failure(anonymous.models.list());
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.code).toBe('invalid_api_key');
    expect(unauthorized.message).not.toContain('no body');
    expect(unauthorized.message).toMatch(/^401 .*API key/);

    const chatOnly = (await sut.keys.create(`chat-only-${Date.now()}`, { scopes: ['chat'] })).key;
    const limited = new OpenAI({ baseURL: `${sut.url}/v1`, apiKey: chatOnly, maxRetries: 0 });
    const forbidden = await failure(limited.embeddings.create({ model: embeddingModel, input: 'x' }));
    expect(forbidden.status).toBe(403);
    expect(forbidden.type).toBe('permission_error');
    expect(forbidden.message).toContain('embeddings');

    const notFound = await failure(
      client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
    );
    expect(notFound.status).toBe(404);
    expect(notFound.code).toBe('model_not_found');
    expect(notFound.message).toBe(
      `404 The model \`gpt-4o\` does not exist. This server serves \`${model}\` (GET /v1/models).`,
    );

    const badEmbeddingModel = await failure(
      client.embeddings.create({ model: 'text-embedding-3-small', input: 'x' }),
    );
    expect(badEmbeddingModel.status).toBe(404);
    expect(badEmbeddingModel.message).toContain(embeddingModel);

    const tooHot = await failure(
      client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], temperature: 5 }),
    );
    expect(tooHot.status).toBe(400);
    expect(tooHot.param).toBe('temperature');
    expect(tooHot.type).toBe('invalid_request_error');
    expect(tooHot.message).toBe('400 temperature must not be greater than 2');

    const badRole = await failure(
      client.chat.completions.create({
        model,
        messages: [{ role: 'narrator', content: 'hi' } as unknown as OpenAI.ChatCompletionMessageParam],
      }),
    );
    expect(badRole.param).toBe('messages[0].role');

    const salted = await failure(
      client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: 'hi' }],
        ...({ cache_salt: 'mine' } as object),
      }),
    );
    expect(salted.status).toBe(400);
    expect(salted.param).toBe('cache_salt');
  });

  it('should keep problem details on conversation routes', async () => {
    const res = await fetch(`${sut.url}/v1/conversations/00000000-0000-4000-8000-000000000000`, {
      headers: { authorization: `Bearer ${sut.keyA}` },
    });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
  });

  it('should count every request: Prometheus series and a usage record per request', async () => {
    const metrics = await (await fetch(`${sut.url}/metrics`)).text();
    expect(metrics).toMatch(/kvchat_turns_total\{[^}]*agent="chat-completions"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/kvchat_embedding_inputs_total\{source="cache"\} [1-9]/);
    expect(metrics).toMatch(/kvchat_embedding_tokens_total [1-9]/);

    const chats = recorded.filter((r) => r.endpoint === 'chat.completions');
    expect(chats.length).toBeGreaterThan(5);
    expect(chats.every((r) => r.tenantId === sut.tenantA && r.model === model)).toBe(true);
    expect(chats.some((r) => r.cacheLayer === 'exact' && r.promptTokens === 0 && r.replaced)).toBe(true);
    const embeddings = recorded.filter((r) => r.endpoint === 'embeddings');
    expect(embeddings.map((r) => r.cacheLayer)).toEqual(['none', 'none', 'exact']);
    expect(embeddings[2].promptTokens).toBe(0);
  });
});
