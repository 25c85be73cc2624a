import { connect } from 'node:net';
import { sample as sampleSchema } from 'openapi-sampler';
import { runFuzz } from '../../bench/fuzz-core';
import { api, startTestApp, type TestApp } from '../factories/test-app';

/**
 * Sends raw bytes and returns the raw response (status line, headers, body) once the server closes
 * (every request says `Connection: close`). The socket stays open for writing, as HTTP clients keep it:
 * a half-close would make Node's server abort a request still in its asynchronous hooks.
 */
function rawHttp(url: string, text: string): Promise<{ status: number; head: string; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(text));
    let out = '';
    socket.on('data', (d: Buffer) => (out += d.toString('utf8')));
    socket.on('error', reject);
    socket.on('close', () => {
      const [head, ...rest] = out.split('\r\n\r\n');
      resolve({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0),
        head,
        body: rest.join('\r\n\r\n'),
      });
    });
  });
}

/** The first problem body in a raw response. */
const problemOf = (body: string): Record<string, unknown> =>
  JSON.parse(body.slice(body.indexOf('{'))) as never;

/**
 * Hostile input and framework-level errors (issue 10, items 5 and 6): every rejection is a 4xx
 * problem+json naming its cause, never a 5xx; security headers always, CORS only when configured.
 */
describe('hardening (e2e)', () => {
  let sut: TestApp;
  let conversationId: string;
  let knowledgeBaseId: string;
  let adminKey: string;
  let adminKeyId: string;
  let spareTenant: string;

  beforeAll(async () => {
    sut = await startTestApp({ MAX_MESSAGE_CHARS: '2000', MAX_PROMPT_CHARS: '5000' });
    conversationId = (await api(`${sut.url}/v1/conversations`, { key: sut.keyA, body: { title: 't' } })).body
      .id as string;
    knowledgeBaseId = (
      await api(`${sut.url}/v1/knowledge-bases`, { key: sut.keyA, body: { name: 'hardening' } })
    ).body.id as string;
    // Admin routes need the `admin` scope: a platform admin, as `npm run keys:create -- --platform-admin` makes.
    const admin = await sut.keys.create(`ops-${conversationId.slice(0, 8)}`, { admin: true });
    adminKey = admin.key;
    const spare = await sut.keys.create(`spare-${conversationId.slice(0, 8)}`);
    adminKeyId = spare.keyId;
    spareTenant = spare.tenantName;
  });

  afterAll(async () => {
    await sut?.close();
  });

  const head = (path: string, extra = ''): string =>
    `${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${sut.keyA}\r\n${extra}Connection: close\r\n`;

  it.each([
    ['a path with bad percent-encoding', 'GET /v1/conversations/%E0%A4%A', '', '', 400],
    ['an id longer than the router allows', `GET /v1/conversations/${'a'.repeat(500)}`, '', '', 414],
    [
      'headers larger than the server allows',
      'GET /health/live',
      `X-Big: ${'a'.repeat(20_000)}\r\n`,
      '',
      431,
    ],
    [
      'an unsupported media type',
      'POST /v1/conversations',
      'Content-Type: text/xml\r\nContent-Length: 4\r\n',
      '<a/>',
      415,
    ],
    [
      'a content-length shorter than the body',
      'POST /v1/conversations',
      'Content-Type: application/json\r\nContent-Length: 5\r\n',
      '{"title":"x"}',
      400,
    ],
  ])('should answer %s with a problem+json', async (_, start, headers, body, status) => {
    const res = await rawHttp(sut.url, `${head(start, headers)}\r\n${body}`);

    expect(res.status).toBe(status);
    expect(res.head.toLowerCase()).toContain('content-type: application/problem+json');
    expect(problemOf(res.body)).toMatchObject({ status, requestId: expect.any(String) });
  });

  it('should answer a body over BODY_LIMIT_BYTES with a 413 problem', async () => {
    const res = await api(`${sut.url}/v1/conversations`, {
      key: sut.keyA,
      body: { title: 'x', metadata: { blob: 'x'.repeat(1_100_000) } },
    });

    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
  });

  it.each([
    ['nested 20,000 levels deep', `{"title":${'['.repeat(20_000)}${']'.repeat(20_000)}}`, 'title'],
    ['with a NUL in the title', '{"title":"a\\u0000b"}', 'title'],
    ['with a lone surrogate in metadata', '{"metadata":{"note":"x\\ud800"}}', 'metadata.note'],
    ['with a NUL in a metadata key', '{"metadata":{"k\\u0000":1}}', 'metadata.k\u0000'],
  ])('should reject a body %s with a 400 naming the field', async (_, body, field) => {
    const res = await api(`${sut.url}/v1/conversations`, { key: sut.keyA, body });

    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'InvalidRequest', field });
  });

  it('should reject a turn whose content holds a lone surrogate before storing anything', async () => {
    const res = await api(`${sut.url}/v1/conversations/${conversationId}/turns`, {
      key: sut.keyA,
      body: '{"content":"hello \\udc00"}',
    });
    const messages = await api(`${sut.url}/v1/conversations/${conversationId}/messages`, { key: sut.keyA });

    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ field: 'content' });
    expect(messages.body.data).toEqual([]);
  });

  it.each([
    ['a non-uuid id', '/v1/conversations', '2026-01-01T00:00:00.000Z|not-a-uuid'],
    [
      'an out-of-range date',
      '/v1/conversations',
      '-271821-04-20T00:00:00.000Z|00000000-0000-4000-8000-000000000000',
    ],
    ['a sequence past PostgreSQL integers', 'messages', '99999999999'],
    ['a negative sequence', 'messages', '-1'],
  ])('should reject a cursor with %s with a 400 naming cursor', async (_, path, decoded) => {
    const url = path === 'messages' ? `/v1/conversations/${conversationId}/messages` : path;
    const cursor = Buffer.from(decoded).toString('base64url');

    const res = await api(`${sut.url}${url}?cursor=${cursor}`, { key: sut.keyA });

    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'InvalidRequest', field: 'cursor' });
  });

  it.each([
    ['a message that is an array', { messages: [[]] }, 400, undefined],
    [
      'a message over MAX_MESSAGE_CHARS',
      { messages: [{ role: 'user', content: 'x'.repeat(2001) }] },
      413,
      'messages[0].content',
    ],
    [
      'messages over MAX_PROMPT_CHARS together',
      { messages: Array.from({ length: 3 }, () => ({ role: 'user', content: 'x'.repeat(1900) })) },
      413,
      'messages',
    ],
  ])('should reject a chat completion with %s', async (_, body, status, field) => {
    const res = await api(`${sut.url}/v1/chat/completions`, {
      key: sut.keyA,
      body: { model: 'kvchat-sim-llama-3.1-8b', ...body },
    });

    expect(res.status).toBe(status);
    // OpenAI's error object: the field is its `param`.
    if (field) expect(res.body.error).toMatchObject({ param: field });
  });

  it('should send security headers and no CORS headers when no origin is configured', async () => {
    const live = await api(`${sut.url}/health/live`, { headers: { origin: 'https://evil.example' } });
    const preflight = await api(`${sut.url}/v1/conversations`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    });

    expect(live.headers.get('x-content-type-options')).toBe('nosniff');
    expect(live.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(live.headers.get('strict-transport-security')).toContain('max-age=');
    expect(live.headers.get('access-control-allow-origin')).toBeNull();
    expect(preflight.status).toBe(404);
    // The same headers on a refusal answered by an earlier hook and on the OpenAI-compatible endpoint.
    expect(preflight.headers.get('x-content-type-options')).toBe('nosniff');
    const unauthorized = await api(`${sut.url}/v1/chat/completions`, {
      body: { model: 'x', messages: [{ role: 'user', content: 'hi' }] },
    });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get('content-security-policy')).toContain(
      "script-src 'self' 'unsafe-inline'",
    );
    expect(unauthorized.headers.get('x-frame-options')).toBe('SAMEORIGIN');
  });

  it('should make every documented request example succeed', async () => {
    const doc = (await api(`${sut.url}/docs-json`)).body as {
      paths: Record<
        string,
        Record<string, { requestBody?: { content: Record<string, { schema: object }> } }>
      >;
    };
    const posted: string[] = [];
    const failed: { op: string; status: number; body: unknown }[] = [];

    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const schema = op.requestBody?.content['application/json']?.schema;
        if (!schema) continue;
        const body = sampleSchema(schema as never, { skipReadOnly: true }, doc as never) as Record<
          string,
          unknown
        >;
        // Ids in an example must name the caller's own things: the suite's knowledge base stands in for them.
        if (Array.isArray(body.knowledgeBaseIds)) body.knowledgeBaseIds = [knowledgeBaseId];
        // A tenant named in an admin example must exist: the spare tenant stands in for it.
        if (path.startsWith('/v1/admin/keys') && 'tenant' in body) body.tenant = spareTenant;
        const isAdmin = path.startsWith('/v1/admin/');
        const id = path.startsWith('/v1/knowledge-bases/')
          ? knowledgeBaseId
          : path.startsWith('/v1/admin/keys/')
            ? adminKeyId
            : conversationId;
        const res = await api(`${sut.url}${path.replace('{id}', id).replace('{tenant}', spareTenant)}`, {
          method: method.toUpperCase(),
          key: isAdmin ? adminKey : sut.keyA,
          body: body as object,
        });
        posted.push(`${method} ${path}`);
        if (res.status >= 300) failed.push({ op: `${method} ${path}`, status: res.status, body: res.body });
      }
    }

    expect(failed).toEqual([]);
    expect(posted).toEqual(
      expect.arrayContaining([
        'post /v1/conversations',
        'post /v1/conversations/{id}/turns',
        'post /v1/chat/completions',
      ]),
    );
  });

  it('should document the streamed 200 of a turn beside its 201', async () => {
    const doc = (await api(`${sut.url}/docs-json`)).body;
    const responses = doc.paths['/v1/conversations/{id}/turns'].post.responses;

    expect(Object.keys(responses)).toEqual(expect.arrayContaining(['200', '201']));
    expect(Object.keys(responses['200'].content)).toContain('text/event-stream');
  });

  it('should answer a short seeded fuzz pass from the OpenAPI document with no 5xx', async () => {
    const { summary, results } = await runFuzz({
      baseUrl: sut.url,
      apiKey: sut.keyA,
      seed: 10,
      requests: 150,
      concurrency: 4,
    });

    expect(results.filter((r) => r.status >= 500 || r.status === 0)).toEqual([]);
    expect(summary.requests).toBe(150);
  });
});

describe('hardening, configured exposure (e2e)', () => {
  let sut: TestApp;

  beforeAll(async () => {
    sut = await startTestApp({
      CORS_ORIGINS: 'https://app.example',
      DOCS_ENABLED: 'false',
      METRICS_PORT: '0',
      METRICS_BEARER_TOKEN: 'metrics-token-0123456789',
    });
  });

  afterAll(async () => {
    await sut?.close();
  });

  it('should answer a preflight from an allowed origin and not from another', async () => {
    const preflight = (origin: string) =>
      api(`${sut.url}/v1/conversations`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization',
        },
      });

    const allowed = await preflight('https://app.example');
    const other = await preflight('https://evil.example');

    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(allowed.headers.get('access-control-allow-headers')).toContain('authorization');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('should not serve /docs when DOCS_ENABLED=false', async () => {
    expect((await api(`${sut.url}/docs-json`)).status).toBe(404);
  });

  it('should serve /metrics only on METRICS_PORT, and only with the token', async () => {
    const { MetricsPortServer } = await import('../../src/observability/metrics-exposure');
    const metricsUrl = sut.running.app.get(MetricsPortServer).url!;

    const onApiPort = await api(`${sut.url}/metrics`, {
      headers: { authorization: 'Bearer metrics-token-0123456789' },
    });
    const withoutToken = await fetch(`${metricsUrl}/metrics`);
    const withToken = await fetch(`${metricsUrl}/metrics`, {
      headers: { authorization: 'Bearer metrics-token-0123456789' },
    });

    expect(onApiPort.status).toBe(404);
    expect(withoutToken.status).toBe(401);
    expect(withoutToken.headers.get('www-authenticate')).toContain('Bearer');
    expect(withToken.status).toBe(200);
    expect(await withToken.text()).toContain('kvchat_');
  });
});
