import { randomUUID } from 'node:crypto';

import Redis from 'ioredis';
import OpenAI from 'openai';
import type {
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';

import { cosineSimilarity } from '../../src/common/lexical-embedding';
import { parsePrometheusText } from '../../src/inference/prometheus-text';
import {
  type RunningSimulator,
  startEngineSimulator,
  startEngineSimulatorCluster,
} from '../../src/simulator/simulator.server';
import { deleteRedisPrefix } from '../factories/redis';

/**
 * The engine simulator over HTTP, spoken to with the official `openai` SDK as the app does:
 * prefix caching across turns, streaming usage, embeddings, tokenize, metrics, cache salt,
 * faults, abort, the LMCache CPU tier and a remote tier shared by two replicas through the local
 * Redis. Time scale 0 unless a scenario measures time.
 */
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const SYSTEM =
  'You are kvchat, a careful assistant. Answer in two short paragraphs, cite sources, and be kind. '.repeat(
    3,
  );

type SaltedParams = ChatCompletionCreateParamsNonStreaming & { cache_salt?: string };

function clientFor(sim: RunningSimulator): OpenAI {
  return new OpenAI({ baseURL: sim.baseURL, apiKey: 'unused', maxRetries: 0 });
}

function userTurn(content: string): ChatCompletionMessageParam[] {
  return [
    { role: 'system', content: SYSTEM },
    { role: 'user', content },
  ];
}

async function post(sim: RunningSimulator, path: string, body: unknown): Promise<Response> {
  return fetch(`${sim.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

describe('engine simulator (integration)', () => {
  let sim: RunningSimulator;
  let sut: OpenAI;

  beforeAll(async () => {
    sim = await startEngineSimulator({ timing: { timeScale: 0 } });
    sut = clientFor(sim);
  });
  afterAll(() => sim?.close());
  afterEach(() => sim.engine.setFaults({ errorRate: 0, cutStreamAfterTokens: null, stallMs: 0 }));

  it('should list a sim model with its context window when asked for models', async () => {
    const models = await sut.models.list();

    expect(models.data[0].id).toContain('sim');
    expect(models.data[0]).toMatchObject({ max_model_len: 32768 });
  });

  it("should report turn 1's prompt and reply blocks as cached when turn 2 extends the conversation", async () => {
    const turn1 = userTurn(`What is prefix caching? ${randomUUID()}`);
    const first = await sut.chat.completions.create({ model: sim.engine.options.model, messages: turn1 });
    const reply = first.choices[0].message.content ?? '';
    const turn2: ChatCompletionMessageParam[] = [
      ...turn1,
      { role: 'assistant', content: reply },
      { role: 'user', content: 'And how does LMCache help?' },
    ];

    const second = await sut.chat.completions.create({ model: sim.engine.options.model, messages: turn2 });

    expect(reply.startsWith('[simulated]')).toBe(true);
    expect(first.choices[0].finish_reason).toBe('stop');
    expect(first.usage?.prompt_tokens_details?.cached_tokens).toBe(0);
    // Computed KV of turn 1 = prompt + reply (the EOS token is sampled but never fed back).
    const computed = (first.usage?.prompt_tokens ?? 0) + (first.usage?.completion_tokens ?? 0) - 1;
    const expected = Math.floor(computed / 16) * 16;
    expect(second.usage?.prompt_tokens_details?.cached_tokens).toBe(expected);
    expect(expected).toBeGreaterThan(first.usage?.prompt_tokens ?? Infinity);
  });

  it('should answer n choices with logprobs in one JSON answer, one entry per token of text', async () => {
    const answer = await sut.chat.completions.create({
      model: sim.engine.options.model,
      messages: userTurn(`Give me three takes on KV caches ${randomUUID()}`),
      n: 3,
      logprobs: true,
      top_logprobs: 2,
      max_tokens: 24,
    });

    expect(answer.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    for (const choice of answer.choices) {
      const entries = choice.logprobs?.content ?? [];
      expect(entries.length).toBeGreaterThan(0);
      // The end-of-turn token has no text and no entry, as in the stream.
      expect(entries.map((e) => e.token).join('')).toBe(choice.message.content);
      expect(entries.every((e) => e.top_logprobs.length === 2)).toBe(true);
    }
    expect(answer.usage?.prompt_tokens_details?.cached_tokens).toBeGreaterThanOrEqual(0);
  });

  it('should stream the same text as a plain answer and end with a usage chunk when include_usage is set', async () => {
    const messages = userTurn(`Stream me ${randomUUID()}`);
    const plain = await sut.chat.completions.create({ model: sim.engine.options.model, messages, seed: 3 });

    const stream = await sut.chat.completions.create({
      model: sim.engine.options.model,
      messages,
      seed: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);

    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    const last = chunks.at(-1);
    expect(text).toBe(plain.choices[0].message.content);
    expect(chunks.some((c) => c.choices[0]?.finish_reason === 'stop')).toBe(true);
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toMatchObject({
      prompt_tokens: plain.usage?.prompt_tokens,
      completion_tokens: plain.usage?.completion_tokens,
      total_tokens: plain.usage?.total_tokens,
    });
    expect(last?.usage?.prompt_tokens_details?.cached_tokens).toBeGreaterThan(0);
  });

  it('should honour max_tokens with finish reason length when the reply is longer', async () => {
    const res = await sut.chat.completions.create({
      model: sim.engine.options.model,
      messages: userTurn('Be long.'),
      max_completion_tokens: 7,
    });

    expect(res.usage?.completion_tokens).toBe(7);
    expect(res.choices[0].finish_reason).toBe('length');
  });

  it('should answer a text completion with the same usage fields', async () => {
    const res = await sut.completions.create({
      model: sim.engine.options.model,
      prompt: 'Once upon a time',
      max_tokens: 12,
    });

    expect(res.choices[0].text.length).toBeGreaterThan(0);
    expect(res.usage).toMatchObject({ completion_tokens: 12, prompt_tokens: 4 });
  });

  it('should decode base64 embeddings into unit vectors when the SDK uses its default encoding', async () => {
    const res = await sut.embeddings.create({
      model: sim.engine.options.embeddingModel,
      input: [
        'How do I reset my password?',
        'How can I reset the password of my account?',
        'Weather in Paris',
      ],
    });
    const floats = await sut.embeddings.create({
      model: sim.engine.options.embeddingModel,
      input: 'How do I reset my password?',
      encoding_format: 'float',
    });

    const [a, b, c] = res.data.map((d) => d.embedding);
    expect(a).toHaveLength(384);
    expect(Math.hypot(...a)).toBeCloseTo(1, 5);
    expect(cosineSimilarity(a, b)).toBeGreaterThan(cosineSimilarity(a, c));
    floats.data[0].embedding.forEach((v, i) => expect(v).toBeCloseTo(a[i], 6));
    expect(res.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it('should count the same prompt tokens in /tokenize as the chat usage when given the same messages', async () => {
    const messages = userTurn('Count my tokens, please.');
    const chat = await sut.chat.completions.create({
      model: sim.engine.options.model,
      messages,
      max_tokens: 2,
    });

    const tokenized = (await (await post(sim, '/tokenize', { messages })).json()) as {
      count: number;
      max_model_len: number;
      tokens: number[];
    };
    const prompt = (await (await post(sim, '/detokenize', { tokens: tokenized.tokens })).json()) as {
      prompt: string;
    };

    expect(tokenized.count).toBe(chat.usage?.prompt_tokens);
    expect(tokenized.max_model_len).toBe(32768);
    expect(prompt.prompt.endsWith('<|im_start|>assistant\n')).toBe(true);
  });

  it('should expose vLLM and LMCache metric names with the model label when scraped', async () => {
    const text = await (await fetch(`${sim.url}/metrics`)).text();
    const label = `{model_name="${sim.engine.options.model}"}`;

    for (const name of [
      'vllm:prefix_cache_queries_total',
      'vllm:prefix_cache_hits_total',
      'vllm:prompt_tokens_total',
      'vllm:generation_tokens_total',
      'vllm:num_requests_running',
      'vllm:num_requests_waiting',
      'vllm:kv_cache_usage_perc',
      'lmcache:num_hit_tokens_total',
      'lmcache:num_requested_tokens_total',
      'lmcache:num_retrieve_requests_total',
      'lmcache:num_store_requests_total',
    ]) {
      expect(text).toContain(`${name}${label}`);
    }
    expect(text).toContain('vllm:time_to_first_token_seconds_bucket');
    expect(text).toContain('vllm:inter_token_latency_seconds_bucket');
    expect(text).toContain('vllm:e2e_request_latency_seconds_count');
    expect(text).toMatch(/vllm:request_success_total\{finished_reason="stop",model_name="[^"]+"\} [1-9]/);
    const hits = Number(/vllm:prefix_cache_hits_total\{[^}]*\} (\d+)/.exec(text)?.[1]);
    expect(hits).toBeGreaterThan(0);
  });

  it("should count every HTTP request by route, streamed ones included, as vLLM's http_requests_total", async () => {
    const count = async (handler: string, status: string): Promise<number> =>
      parsePrometheusText(await (await fetch(`${sim.url}/metrics`)).text())
        .filter(
          (s) =>
            s.name === 'http_requests_total' && s.labels.handler === handler && s.labels.status === status,
        )
        .reduce((sum, s) => sum + s.value, 0);
    const before = {
      tokenize: await count('/tokenize', '2xx'),
      refused: await count('/tokenize', '4xx'),
      chat: await count('/v1/chat/completions', '2xx'),
    };

    expect((await post(sim, '/tokenize', { prompt: 'count me' })).status).toBe(200);
    expect((await post(sim, '/tokenize', { model: 'no-such-model', prompt: 'x' })).status).toBe(404);
    const stream = await sut.chat.completions.create({
      model: sim.engine.options.model,
      messages: userTurn(`Count me ${randomUUID()}`),
      stream: true,
    });
    for await (const chunk of stream) void chunk;

    expect(await count('/tokenize', '2xx')).toBe(before.tokenize + 1);
    expect(await count('/tokenize', '4xx')).toBe(before.refused + 1);
    expect(await count('/v1/chat/completions', '2xx')).toBe(before.chat + 1);
  });

  it('should share cached blocks only between requests with the same cache_salt', async () => {
    const messages = userTurn(`Salted question ${randomUUID()}`);
    const ask = async (salt: string) => {
      const params: SaltedParams = {
        model: sim.engine.options.model,
        messages,
        max_tokens: 2,
        cache_salt: salt,
      };
      return (await sut.chat.completions.create(params)).usage?.prompt_tokens_details?.cached_tokens;
    };

    expect(await ask('tenant-a')).toBe(0);
    expect(await ask('tenant-b')).toBe(0);
    expect(await ask('tenant-a')).toBeGreaterThan(0);
  });

  it('should forget every cached block when /reset_prefix_cache is called', async () => {
    const messages = userTurn(`Reset me ${randomUUID()}`);
    const ask = async () =>
      (await sut.chat.completions.create({ model: sim.engine.options.model, messages, max_tokens: 2 })).usage
        ?.prompt_tokens_details?.cached_tokens;
    await ask();
    expect(await ask()).toBeGreaterThan(0);

    const reset = await post(sim, '/reset_prefix_cache', {});

    expect(reset.status).toBe(200);
    expect(await ask()).toBe(0);
  });

  it("should answer 400 with vLLM's wording when the request exceeds the context window", async () => {
    const call = sut.chat.completions.create({
      model: sim.engine.options.model,
      messages: userTurn('hi'),
      max_tokens: 40_000,
    });

    await expect(call).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining("This model's maximum context length is 32768 tokens") as unknown,
    });
  });

  it('should answer the injected status before any token when errorRate is 1', async () => {
    sim.engine.setFaults({ errorRate: 1, errorStatus: 503 });

    const res = await post(sim, '/v1/chat/completions', { messages: userTurn('fail'), stream: true });
    const body = (await res.json()) as { error: { code: number; type: string } };

    expect(res.status).toBe(503);
    expect(res.headers.get('x-kvchat-engine')).toBe('simulator');
    expect(body.error).toMatchObject({ code: 503, type: 'ServiceUnavailableError' });
    await expect(
      sut.chat.completions.create({ model: sim.engine.options.model, messages: userTurn('fail') }),
    ).rejects.toMatchObject({ status: 503 });
  });

  it('should drop the connection without [DONE] when the stream is cut after N tokens', async () => {
    const faults = await post(sim, '/sim/faults', { cutStreamAfterTokens: 3 });
    expect(await faults.json()).toMatchObject({ cutStreamAfterTokens: 3 });
    const received: string[] = [];

    const consume = async () => {
      const stream = await sut.chat.completions.create({
        model: sim.engine.options.model,
        messages: userTurn(`cut ${randomUUID()}`),
        stream: true,
      });
      for await (const chunk of stream) received.push(chunk.choices[0]?.delta?.content ?? '');
    };

    await expect(consume()).rejects.toThrow();
    expect(received.filter((t) => t !== '').length).toBeLessThanOrEqual(3);
    expect(received.length).toBeGreaterThan(0);
  });

  it('should delay the first token by stallMs of wall-clock time when a stall is injected', async () => {
    sim.engine.setFaults({ stallMs: 300 });
    const started = performance.now();

    const { response } = await sut.chat.completions
      .create({ model: sim.engine.options.model, messages: userTurn('stall'), max_tokens: 2 })
      .withResponse();

    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(Number(response.headers.get('x-kvchat-engine-stall-ms'))).toBe(300);
    expect(Number(response.headers.get('x-kvchat-engine-ttft-ms'))).toBeGreaterThanOrEqual(290);
  });

  it('should refuse a fault patch with 400 when a value is invalid or a field unknown', async () => {
    const invalid = await post(sim, '/sim/faults', { errorRate: 3 });
    const unknown = await post(sim, '/sim/faults', { explode: true });

    expect(invalid.status).toBe(400);
    expect(((await invalid.json()) as { error: { message: string } }).error.message).toContain('errorRate');
    expect(unknown.status).toBe(400);
    expect(sim.engine.getFaults().errorRate).toBe(0);
  });

  it('should say it is a simulator on every response, errors and unknown routes included', async () => {
    const missing = await fetch(`${sim.url}/nope`);
    const badModel = await post(sim, '/v1/chat/completions', { model: 'gpt-4o', messages: userTurn('x') });

    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-kvchat-engine')).toBe('simulator');
    expect(badModel.status).toBe(404);
    expect(badModel.headers.get('x-kvchat-engine')).toBe('simulator');
  });
});

describe('engine simulator under load and pressure (integration)', () => {
  it('should free the request and its blocks when the client disconnects mid-stream', async () => {
    const sim = await startEngineSimulator({
      timing: { timeScale: 1, itlMs: 50 },
      replyTokens: { min: 200, max: 200 },
    });
    try {
      const controller = new AbortController();
      const stream = await clientFor(sim).chat.completions.create(
        { model: sim.engine.options.model, messages: userTurn('long answer'), stream: true },
        { signal: controller.signal },
      );
      let received = 0;
      // The SDK ends the iteration quietly (or throws) on abort; either way the client is gone.
      await (async () => {
        for await (const chunk of stream) {
          if (chunk.choices[0]?.delta?.content) received++;
          if (received === 1) controller.abort();
        }
      })().catch(() => undefined);
      expect(received).toBe(1);

      await waitFor(() => sim.engine.state().requests.running === 0, 2000);
      const state = sim.engine.state();
      expect(state.requests.aborted).toBe(1);
      expect(state.gpu.usedBlocks).toBe(0);
      expect(await (await fetch(`${sim.url}/metrics`)).text()).toMatch(/finished_reason="abort"[^}]*\} 1/);
    } finally {
      await sim.close();
    }
  });

  it('should queue requests beyond maxNumSeqs and report the wait in the queue header', async () => {
    const sim = await startEngineSimulator({
      maxNumSeqs: 1,
      timing: { timeScale: 1, itlMs: 20, overheadMs: 0 },
      replyTokens: { min: 10, max: 10 },
    });
    try {
      const client = clientFor(sim);
      const ask = () =>
        client.chat.completions
          .create({ model: sim.engine.options.model, messages: userTurn(`queue ${randomUUID()}`) })
          .withResponse();

      const [a, b] = await Promise.all([ask(), ask()]);

      const queues = [a, b]
        .map((r) => Number(r.response.headers.get('x-kvchat-engine-queue-ms')))
        .sort((x, y) => x - y);
      expect(queues[0]).toBeLessThan(50);
      expect(queues[1]).toBeGreaterThanOrEqual(150); // waited for the other's 10 tokens x 20 ms
    } finally {
      await sim.close();
    }
  });

  it('should serve the prompt from the LMCache CPU tier when its GPU blocks were evicted', async () => {
    // 64 GPU blocks of 16 tokens hold one 700-token conversation at a time.
    const sim = await startEngineSimulator({
      timing: { timeScale: 0 },
      maxModelLen: 1024,
      numGpuBlocks: 64,
      lmcache: { chunkSize: 64 },
      replyTokens: { min: 8, max: 8 },
    });
    try {
      const client = clientFor(sim);
      const long = (tag: string) => userTurn(`${tag} ${'lorem ipsum dolor sit amet '.repeat(110)}`);
      const ask = (messages: ChatMessageList) =>
        client.chat.completions.create({ model: sim.engine.options.model, messages }).withResponse();
      await ask(long('first'));
      await ask(long('second')); // evicts the first conversation's GPU blocks

      const again = await ask(long('first'));

      const h = again.response.headers;
      const cached = again.data.usage?.prompt_tokens_details?.cached_tokens ?? 0;
      expect(Number(h.get('x-kvchat-engine-cpu-hit-tokens'))).toBeGreaterThan(0);
      expect(cached).toBe(
        Number(h.get('x-kvchat-engine-gpu-hit-tokens')) + Number(h.get('x-kvchat-engine-cpu-hit-tokens')),
      );
      expect(cached).toBeGreaterThanOrEqual(
        Math.floor(((again.data.usage?.prompt_tokens ?? 0) - 1) / 64) * 64,
      );
    } finally {
      await sim.close();
    }
  });

  it('should load a prompt from the shared remote tier on a replica that never saw it', async () => {
    const prefix = `kvchat:test:sim:${randomUUID()}:`;
    const cluster = await startEngineSimulatorCluster(2, {
      timing: { timeScale: 0 },
      lmcache: { chunkSize: 64, remoteTierRedisUrl: REDIS_URL, remoteKeyPrefix: prefix },
    });
    const redis = new Redis(REDIS_URL);
    try {
      const [a, b] = cluster.replicas.map(clientFor);
      const messages = userTurn(`shared ${randomUUID()} ${'context '.repeat(150)}`);
      const model = cluster.replicas[0].engine.options.model;

      const onA = await a.chat.completions.create({ model, messages, max_tokens: 2 }).withResponse();
      const onB = await b.chat.completions.create({ model, messages, max_tokens: 2 }).withResponse();

      const promptTokens = onB.data.usage?.prompt_tokens ?? 0;
      // Every full chunk is shared, but the last prompt token is always recomputed.
      const expected = Math.min(Math.floor(promptTokens / 64) * 64, promptTokens - 1);
      expect(onA.data.usage?.prompt_tokens_details?.cached_tokens).toBe(0);
      expect(onB.response.headers.get('x-kvchat-engine-replica')).toBe('1');
      expect(Number(onB.response.headers.get('x-kvchat-engine-gpu-hit-tokens'))).toBe(0);
      expect(Number(onB.response.headers.get('x-kvchat-engine-remote-hit-tokens'))).toBe(expected);
      expect(onB.data.usage?.prompt_tokens_details?.cached_tokens).toBe(expected);
      expect((await redis.keys(`${prefix}*`)).length).toBe(Math.floor(promptTokens / 64));
    } finally {
      await redis.quit();
      await cluster.close();
      await deleteRedisPrefix(prefix, REDIS_URL);
    }
  });
});

type ChatMessageList = ChatCompletionMessageParam[];
