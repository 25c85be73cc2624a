import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { Agent } from 'undici';
import { DRAIN_AFTER_DONE_MS, postChatStream, postJson } from './chat-stream-request';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

/** A one-route stand-in server whose handler each test sets. */
async function startServer(): Promise<{ baseURL: string; handle(h: Handler): void; close(): Promise<void> }> {
  let handler: Handler = (_req, res) => res.end();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => handler(req, res, body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    handle: (h) => (handler = h),
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const chunk = (content: string) => ({
  id: 'c1',
  object: 'chat.completion.chunk',
  created: 0,
  model: 'm',
  choices: [{ index: 0, delta: { content }, finish_reason: null }],
});

async function collect(iterable: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const x of iterable) out.push(x);
  return out;
}

/** The connection pool of the requests whose test does not make its own (a caller always passes one). */
const pool = new Agent();
afterAll(() => pool.close());

describe('postChatStream', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server.close());
  const post = (signal = new AbortController().signal, timeoutMs = 2000) =>
    postChatStream({
      baseURL: server.baseURL,
      apiKey: 'k-1',
      headers: { 'x-deployment': 'd' },
      body: { model: 'm', stream: true, messages: [] },
      signal,
      timeoutMs,
      dispatcher: pool,
    });

  it('should post the body with the key and headers, and yield every chunk split across reads until [DONE]', async () => {
    let seen: { auth?: string; deployment?: string; body?: string } = {};
    server.handle((req, res, body) => {
      seen = { auth: req.headers.authorization, deployment: req.headers['x-deployment'] as string, body };
      res.writeHead(200, { 'content-type': 'text/event-stream', 'x-kvchat-engine-ttft-ms': '12' });
      const wire = `data: ${JSON.stringify(chunk('Hé'))}\n\ndata: ${JSON.stringify(chunk('llo'))}\n\ndata: [DONE]\n\n`;
      const bytes = Buffer.from(wire);
      // Split inside an event and inside the two-byte é.
      const cut = bytes.indexOf(Buffer.from('é')) + 1;
      res.write(bytes.subarray(0, cut));
      setTimeout(() => res.end(bytes.subarray(cut)), 20);
    });

    const { headers, chunks } = await post();
    const all = (await collect(chunks)) as ReturnType<typeof chunk>[];

    expect(seen).toEqual({
      auth: 'Bearer k-1',
      deployment: 'd',
      body: expect.stringContaining('"stream":true'),
    });
    expect(headers.get('x-kvchat-engine-ttft-ms')).toBe('12');
    expect(all.map((c) => c.choices[0].delta.content)).toEqual(['Hé', 'llo']);
  });

  it('should throw the SDK error of the status with its body and Retry-After', async () => {
    server.handle((_req, res) => {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '3' });
      res.end(JSON.stringify({ error: { message: 'slow down', type: 'rate_limit' } }));
    });

    const failure = await post().catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(APIError);
    expect(failure).toMatchObject({ status: 429, message: '429 slow down' });
    expect((failure as APIError).headers?.get('retry-after')).toBe('3');
  });

  it('should throw an APIError for an error object inside the stream', async () => {
    server.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`data: ${JSON.stringify(chunk('a'))}\n\ndata: {"error":{"message":"engine overloaded"}}\n\n`);
    });

    const { chunks } = await post();

    await expect(collect(chunks)).rejects.toThrow(/engine overloaded/);
  });

  it('should report a connection cut mid-stream as terminated', async () => {
    server.handle((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify(chunk('a'))}\n\n`);
      setTimeout(() => req.socket.destroy(), 20);
    });

    const { chunks } = await post();

    await expect(collect(chunks)).rejects.toThrow(/^terminated/);
  });

  it('should throw APIUserAbortError when the signal fires while streaming', async () => {
    server.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify(chunk('a'))}\n\n`);
    });
    const controller = new AbortController();

    const { chunks } = await post(controller.signal);
    const iterator = chunks[Symbol.asyncIterator]();
    await iterator.next();
    controller.abort();

    await expect(iterator.next()).rejects.toBeInstanceOf(APIUserAbortError);
  });

  it('should throw APIConnectionTimeoutError when no headers come within the timeout', async () => {
    server.handle(() => undefined);

    await expect(post(undefined, 100)).rejects.toBeInstanceOf(APIConnectionTimeoutError);
  });

  it('should throw APIConnectionError when nothing listens', async () => {
    const failure = await postChatStream({
      baseURL: 'http://127.0.0.1:1/v1',
      apiKey: 'k',
      body: {},
      signal: new AbortController().signal,
      timeoutMs: 1000,
      dispatcher: pool,
    }).catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(APIConnectionError);
    expect(failure).not.toBeInstanceOf(APIConnectionTimeoutError);
  });
});

describe('postChatStream forEachChunk (the pushed reading)', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server.close());
  const post = (signal = new AbortController().signal) =>
    postChatStream({
      baseURL: server.baseURL,
      apiKey: 'k-1',
      body: { model: 'm', stream: true, messages: [] },
      signal,
      timeoutMs: 2000,
      dispatcher: pool,
    });
  const pushed = async (response: Awaited<ReturnType<typeof post>>): Promise<unknown[]> => {
    const out: unknown[] = [];
    await response.forEachChunk((c) => out.push(c));
    return out;
  };

  it('should hand over every chunk split across reads, in order, and stop at [DONE]', async () => {
    server.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const wire =
        `data: ${JSON.stringify(chunk('Hé'))}\n\ndata: ${JSON.stringify(chunk('llo'))}\n\n` +
        `data: [DONE]\n\ndata: ${JSON.stringify(chunk('after done'))}\n\n`;
      const bytes = Buffer.from(wire);
      const cut = bytes.indexOf(Buffer.from('é')) + 1;
      res.write(bytes.subarray(0, cut));
      setTimeout(() => res.end(bytes.subarray(cut)), 20);
    });

    const all = (await pushed(await post())) as ReturnType<typeof chunk>[];

    expect(all.map((c) => c.choices[0].delta.content)).toEqual(['Hé', 'llo']);
  });

  it('should resolve at the end of a body without [DONE] (the caller sees no finish)', async () => {
    server.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`data: ${JSON.stringify(chunk('a'))}\n\n`);
    });

    expect(await pushed(await post())).toHaveLength(1);
  });

  it('should reject with an APIError for an error object inside the stream', async () => {
    server.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`data: ${JSON.stringify(chunk('a'))}\n\ndata: {"error":{"message":"engine overloaded"}}\n\n`);
    });

    const failure = await pushed(await post()).catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(APIError);
    expect(String(failure)).toMatch(/engine overloaded/);
  });

  it('should report a connection cut mid-stream as terminated', async () => {
    server.handle((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify(chunk('a'))}\n\n`);
      setTimeout(() => req.socket.destroy(), 20);
    });

    await expect(pushed(await post())).rejects.toThrow(/^terminated/);
  });

  it('should reject with APIUserAbortError when the signal fires while streaming', async () => {
    server.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify(chunk('a'))}\n\n`);
    });
    const controller = new AbortController();

    const response = await post(controller.signal);
    const failure = await response.forEachChunk(() => controller.abort()).catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(APIUserAbortError);
  });

  it("should reject with the consumer's own error, unchanged, and release the connection", async () => {
    let closed!: Promise<void>;
    server.handle((req, res) => {
      closed = new Promise((resolve) => req.socket.once('close', () => resolve()));
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify(chunk('a'))}\n\n`);
    });
    const mine = new RangeError('the consumer failed');

    const failure = await (
      await post()
    )
      .forEachChunk(() => {
        throw mine;
      })
      .catch((e: unknown) => e);

    expect(failure).toBe(mine);
    await closed;
  });
});

describe('postChatStream keeps the engine connection after [DONE]', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  let connections: number;
  let dispatcher: Agent;
  beforeAll(async () => {
    server = await startServer();
  });
  beforeEach(() => {
    connections = 0;
    // One connection per origin: a request waits for the previous one's connection unless it was closed.
    dispatcher = new Agent({ connections: 1 });
    server.handle((req, res) => {
      if (!(req.socket as { seen?: true }).seen) {
        (req.socket as { seen?: true }).seen = true;
        connections += 1;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify(chunk('a'))}\n\ndata: [DONE]\n\n`);
      // As vLLM and the simulator do: the body's end comes in a later write than [DONE].
      setTimeout(() => res.end(), 15);
    });
  });
  afterEach(() => dispatcher.close());
  afterAll(() => server.close());
  const post = () =>
    postChatStream({
      baseURL: server.baseURL,
      apiKey: 'k-1',
      body: { model: 'm', stream: true, messages: [] },
      signal: new AbortController().signal,
      timeoutMs: 2000,
      dispatcher,
    });

  it('should reuse one keep-alive connection for consecutive pushed streams', async () => {
    for (let i = 0; i < 3; i++) {
      const seen: unknown[] = [];
      await (await post()).forEachChunk((c) => seen.push(c));
      expect(seen).toHaveLength(1);
    }

    expect(connections).toBe(1);
  });

  it('should reuse one keep-alive connection for consecutive pulled streams', async () => {
    for (let i = 0; i < 3; i++) expect(await collect((await post()).chunks)).toHaveLength(1);

    expect(connections).toBe(1);
  });

  it('should drop the connection of a body that does not end after [DONE]', async () => {
    let closed!: Promise<number>;
    server.handle((req, res) => {
      const start = Date.now();
      closed = new Promise((resolve) => req.socket.once('close', () => resolve(Date.now() - start)));
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify(chunk('a'))}\n\ndata: [DONE]\n\n`);
    });

    await (await post()).forEachChunk(() => undefined);

    expect(await closed).toBeGreaterThanOrEqual(DRAIN_AFTER_DONE_MS - 50);
  });
});

describe('postJson', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server.close());
  const post = (timeoutMs = 2000) =>
    postJson<{ tokens: number[] }>({
      url: `${server.baseURL.replace(/\/v1$/, '')}/tokenize`,
      apiKey: 'k-1',
      headers: { 'x-deployment': 'd' },
      body: { model: 'm', prompt: 'hi' },
      timeoutMs,
      dispatcher: pool,
    });

  it('should post the JSON body with the key and headers and return the parsed answer', async () => {
    let seen: { url?: string; auth?: string; deployment?: string; body?: string } = {};
    server.handle((req, res, body) => {
      seen = {
        url: req.url,
        auth: req.headers.authorization,
        deployment: req.headers['x-deployment'] as string,
        body,
      };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ tokens: [1, 2, 3], count: 3 }));
    });

    const answer = await post();

    expect(seen).toEqual({
      url: '/tokenize',
      auth: 'Bearer k-1',
      deployment: 'd',
      body: '{"model":"m","prompt":"hi"}',
    });
    expect(answer.tokens).toEqual([1, 2, 3]);
  });

  it('should throw the SDK error of the status (a 404 keeps its status and body text)', async () => {
    server.handle((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('Not Found');
    });

    const failure = await post().catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(APIError);
    expect(failure).toMatchObject({ status: 404 });
  });

  it('should throw APIConnectionTimeoutError when no headers come within the timeout', async () => {
    server.handle(() => undefined);

    await expect(post(100)).rejects.toBeInstanceOf(APIConnectionTimeoutError);
  });

  it('should throw APIConnectionError when nothing listens', async () => {
    const failure = await postJson({
      url: 'http://127.0.0.1:1/tokenize',
      apiKey: 'k',
      body: {},
      timeoutMs: 1000,
      dispatcher: pool,
    }).catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(APIConnectionError);
    expect(failure).not.toBeInstanceOf(APIConnectionTimeoutError);
  });
});
