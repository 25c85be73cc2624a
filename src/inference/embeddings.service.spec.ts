import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CachingConfig, EmbeddingsConfig } from '../config/caching.config';
import { loadConfigClass } from '../config/config.loader';
import { InferenceConfig } from '../config/inference.config';
import { EmbeddingsService, embeddingsProvider } from './embeddings.service';
import { EmbeddingsUnavailable } from './embeddings.errors';
import type { LocalEmbedder } from './local-embedder';

/** A stand-in `/v1` server: lists models and embeds each input as [length, index, 1]. */
async function fakeEmbeddingsServer(models = ['chat-model', 'text-embed-small']) {
  const requests: { model: string; input: string[] }[] = [];
  const authorizations: (string | undefined)[] = [];
  /** Embedding requests still to answer 503 (a server restarting). */
  const unavailable = { count: 0 };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v1/models') {
        res.end(
          JSON.stringify({
            object: 'list',
            data: models.map((id) => ({ id, object: 'model', created: 0, owned_by: 't' })),
          }),
        );
        return;
      }
      authorizations.push(req.headers.authorization);
      if (unavailable.count > 0) {
        unavailable.count--;
        res.statusCode = 503;
        res.end(JSON.stringify({ error: { message: 'warming up' } }));
        return;
      }
      const parsed = JSON.parse(body) as { model: string; input: string[] };
      requests.push(parsed);
      res.end(
        JSON.stringify({
          object: 'list',
          model: parsed.model,
          data: parsed.input.map((text, index) => ({
            object: 'embedding',
            index,
            embedding: [text.length, index, 1],
          })),
          usage: { prompt_tokens: 1, total_tokens: 1 },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return {
    baseURL,
    requests,
    authorizations,
    unavailable,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function makeSut(baseURLs: string[], overrides: Partial<EmbeddingsConfig> = {}): EmbeddingsService {
  const config = Object.assign(new EmbeddingsConfig(), {
    EMBEDDINGS_PROVIDER: 'remote',
    EMBEDDINGS_TIMEOUT_MS: 2000,
    ...overrides,
  });
  return new EmbeddingsService(config, new InferenceConfig(), {
    baseURLs,
    simulated: true,
    close: () => Promise.resolve(),
  });
}

describe('EmbeddingsService', () => {
  let server: Awaited<ReturnType<typeof fakeEmbeddingsServer>>;
  beforeEach(async () => {
    server = await fakeEmbeddingsServer();
  });
  afterEach(() => server.close());

  it('should discover the embedding model and its dimension from the server', async () => {
    const sut = makeSut([server.baseURL]);
    await expect(sut.describe()).resolves.toEqual({
      model: 'text-embed-small',
      dimension: 3,
      baseURL: server.baseURL,
    });
  });

  it('should send texts asked for in the same tick as one batched request, answering each in order', async () => {
    const sut = makeSut([server.baseURL]);
    await sut.describe();
    const texts = ['a', 'bb', 'ccc', 'dddd', 'eeeee'];
    const vectors = await Promise.all(texts.map((t) => sut.embed(t)));
    expect(vectors.map((v) => v[0])).toEqual([1, 2, 3, 4, 5]);
    const batches = server.requests.slice(1); // the first request is the dimension probe
    expect(batches).toHaveLength(1);
    expect(batches[0]).toMatchObject({ model: 'text-embed-small', input: texts });
  });

  it('should split large inputs into batches of EMBEDDINGS_BATCH_SIZE', async () => {
    const sut = makeSut([server.baseURL], { EMBEDDINGS_BATCH_SIZE: 4 });
    const vectors = await sut.embedMany(Array.from({ length: 10 }, (_, i) => 'x'.repeat(i + 1)));
    expect(vectors.map((v) => v[0])).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(server.requests.slice(1).map((r) => r.input.length)).toEqual([4, 4, 2]);
  });

  it('should refuse a model whose vectors do not have EMBEDDINGS_DIMENSION dimensions', async () => {
    const sut = makeSut([server.baseURL], { EMBEDDINGS_DIMENSION: 384 });
    await expect(sut.describe()).rejects.toBeInstanceOf(EmbeddingsUnavailable);
  });

  it('should say so when the server lists no embedding model', async () => {
    const chatOnly = await fakeEmbeddingsServer(['chat-model']);
    try {
      await expect(makeSut([chatOnly.baseURL]).describe()).rejects.toThrow(
        /no embedding model.*EMBEDDINGS_MODEL/,
      );
    } finally {
      await chatOnly.close();
    }
  });

  it('should use the next server when one cannot be reached', async () => {
    const sut = makeSut(['http://127.0.0.1:1/v1', server.baseURL], { EMBEDDINGS_MODEL: 'text-embed-small' });
    await expect(sut.embedMany(['hello'])).resolves.toEqual([[5, 0, 1]]);
    await sut.onApplicationShutdown();
  });

  it('should retry a batch once on a 503 with the API key, and give up after the second', async () => {
    const sut = makeSut([server.baseURL], {
      EMBEDDINGS_MODEL: 'text-embed-small',
      EMBEDDINGS_API_KEY: 'k-1',
    });
    await sut.describe(); // the model's probe, through the SDK
    server.authorizations.length = 0;
    server.requests.length = 0;
    server.unavailable.count = 1;
    await expect(sut.embed('hello')).resolves.toEqual([5, 0, 1]);
    expect(server.authorizations).toEqual(['Bearer k-1', 'Bearer k-1']);

    server.unavailable.count = 2;
    await expect(sut.embed('again')).rejects.toBeInstanceOf(EmbeddingsUnavailable);
    expect(server.authorizations).toHaveLength(4);
    expect(server.requests.map((r) => r.input)).toEqual([['hello']]);
    await sut.onApplicationShutdown();
  });
});

describe('EmbeddingsService (local provider)', () => {
  const local = (env: Record<string, string>) =>
    new EmbeddingsService(loadConfigClass(EmbeddingsConfig, env), new InferenceConfig(), {
      baseURLs: ['http://127.0.0.1:9/v1'],
      simulated: true,
      close: () => Promise.resolve(),
    });
  const cosine = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0);

  it('should default to the in-process model unless EMBEDDINGS_URL is set', () => {
    expect(embeddingsProvider(loadConfigClass(EmbeddingsConfig, {}))).toBe('local');
    expect(
      embeddingsProvider(loadConfigClass(EmbeddingsConfig, { EMBEDDINGS_URL: 'http://e:8000/v1' })),
    ).toBe('remote');
    expect(
      embeddingsProvider(
        loadConfigClass(EmbeddingsConfig, {
          EMBEDDINGS_URL: 'http://e:8000/v1',
          EMBEDDINGS_PROVIDER: 'local',
        }),
      ),
    ).toBe('local');
  });

  it('should read the local model and the caching knobs back from the environment', () => {
    expect(
      loadConfigClass(EmbeddingsConfig, { EMBEDDINGS_LOCAL_MODEL: 'lexical' }).EMBEDDINGS_LOCAL_MODEL,
    ).toBe('lexical');
    expect(() => loadConfigClass(EmbeddingsConfig, { EMBEDDINGS_LOCAL_MODEL: 'bert' })).toThrow(
      /EMBEDDINGS_LOCAL_MODEL/,
    );
    const caching = loadConfigClass(CachingConfig, {
      RESPONSE_CACHE_WORD_VECTORS: 'false',
      RESPONSE_CACHE_CANDIDATES: '3',
    });
    expect(caching.RESPONSE_CACHE_WORD_VECTORS).toBe(false);
    expect(caching.RESPONSE_CACHE_CANDIDATES).toBe(3);
  });

  it('should embed in process without any server, with the lexical model', async () => {
    const sut = local({ EMBEDDINGS_LOCAL_MODEL: 'lexical' });
    await expect(sut.describe()).resolves.toMatchObject({
      model: 'kvchat-local-lexical-384',
      dimension: 384,
      baseURL: 'in-process',
    });
    const [a, b] = await sut.embedMany(['reset my password', 'how do I reset my password']);
    expect(cosine(a, b)).toBeGreaterThan(0.5);
  });

  it('should place a paraphrase nearer than an unrelated question with the sentence model', async () => {
    const sut = local({});
    const info = await sut.describe();
    expect(info).toMatchObject({
      model: 'kvchat-local-use-lite-lexical-896',
      dimension: 896,
      baseURL: 'in-process',
    });
    const [q, paraphrase, other] = await Promise.all([
      sut.embed('what will the weather be like in Paris tomorrow'),
      sut.embed('Paris forecast for tomorrow'),
      sut.embed('how do I reset my router password'),
    ]);
    expect(cosine(q, q)).toBeCloseTo(1, 5);
    expect(cosine(q, paraphrase)).toBeGreaterThan(cosine(q, other) + 0.2);
    await sut.onApplicationShutdown();
    await expect(sut.embed('after the shutdown')).rejects.toBeInstanceOf(EmbeddingsUnavailable);
  });

  it('should gather texts that arrive while the local model computes a batch into the next batch', async () => {
    const sut = local({ EMBEDDINGS_LOCAL_MODEL: 'lexical' });
    await sut.describe();
    const model = (sut as unknown as { local: LocalEmbedder }).local;
    const embedBatch = model.embed.bind(model);
    const batchSizes: number[] = [];
    let releaseFirst!: () => void;
    const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
    jest.spyOn(model, 'embed').mockImplementation(async (texts) => {
      batchSizes.push(texts.length);
      if (batchSizes.length === 1) await firstHeld;
      return embedBatch(texts);
    });
    const nextIteration = () => new Promise<void>((resolve) => setImmediate(resolve));

    const first = sut.embed('first question');
    await nextIteration();
    await nextIteration();
    const waiting: Promise<number[]>[] = [];
    for (const text of ['second', 'third', 'fourth']) {
      waiting.push(sut.embed(text));
      await nextIteration();
    }
    expect(batchSizes).toEqual([1]);
    releaseFirst();
    const vectors = await Promise.all([first, ...waiting]);

    expect(batchSizes).toEqual([1, 3]);
    expect(vectors.map((v) => v.length)).toEqual([384, 384, 384, 384]);
    await sut.onApplicationShutdown();
  });

  it('should refuse a local model whose dimension is not EMBEDDINGS_DIMENSION', async () => {
    const sut = local({ EMBEDDINGS_LOCAL_MODEL: 'lexical', EMBEDDINGS_DIMENSION: '512' });
    await expect(sut.describe()).rejects.toBeInstanceOf(EmbeddingsUnavailable);
  });
});
