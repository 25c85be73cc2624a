import { randomUUID } from 'node:crypto';
import { postSse } from '../factories/sse';
import { api, startTestApp, type TestApp } from '../factories/test-app';

/** `Idempotency-Key` on the three POST routes that create things (issue 10, item 3). */
describe('Idempotency-Key (e2e)', () => {
  let sut: TestApp;

  beforeAll(async () => {
    sut = await startTestApp();
  });

  afterAll(async () => {
    await sut?.close();
  });

  const post = (path: string, body: unknown, key: string, apiKey = sut.keyA) =>
    api(`${sut.url}${path}`, { key: apiKey, body, headers: { 'idempotency-key': key } });

  it('should create one conversation for a repeated request and replay its response', async () => {
    const key = randomUUID();

    const first = await post('/v1/conversations', { title: 'idem' }, key);
    const again = await post('/v1/conversations', { title: 'idem' }, `"${key}"`);
    const list = await api(`${sut.url}/v1/conversations?limit=100`, { key: sut.keyA });

    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(list.body.data.filter((c: { title: string }) => c.title === 'idem')).toHaveLength(1);
  });

  it('should answer 422 for the same key with another body, and keep keys per tenant', async () => {
    const key = randomUUID();
    await post('/v1/conversations', { title: 'one' }, key);

    const other = await post('/v1/conversations', { title: 'two' }, key);
    const otherTenant = await post('/v1/conversations', { title: 'two' }, key, sut.keyB);

    expect(other.status).toBe(422);
    expect(other.body).toMatchObject({ code: 'IdempotencyKeyReused', field: 'Idempotency-Key' });
    expect(otherTenant.status === 201 ? {} : otherTenant.body).toEqual({});
    expect(otherTenant.status).toBe(201);
  });

  it('should reject an empty or non-ASCII key with a 400 naming the header', async () => {
    const empty = await post('/v1/conversations', { title: 'x' }, '""');
    const accented = await api(`${sut.url}/v1/conversations`, {
      key: sut.keyA,
      body: { title: 'x' },
      headers: { 'idempotency-key': 'caf\u00e9' },
    });

    expect(empty.status).toBe(400);
    expect(empty.body).toMatchObject({ code: 'IdempotencyKeyInvalid', field: 'Idempotency-Key' });
    expect(accented.status).toBe(400);
  });

  it('should store two concurrent identical turns once: one runs, the other is 409 with Retry-After or a replay', async () => {
    const conversation = (await api(`${sut.url}/v1/conversations`, { key: sut.keyA, body: { title: 't' } }))
      .body;
    const key = randomUUID();
    const path = `/v1/conversations/${conversation.id}/turns`;
    const body = { content: 'What is a KV cache?' };

    const [a, b] = await Promise.all([post(path, body, key), post(path, body, key)]);
    const later = await post(path, body, key);
    const messages = await api(`${sut.url}${path.replace('/turns', '/messages')}`, { key: sut.keyA });

    const statuses = [a.status, b.status].sort();
    expect([
      [201, 201],
      [201, 409],
    ]).toContainEqual(statuses);
    const conflict = [a, b].find((r) => r.status === 409);
    if (conflict) expect(conflict.headers.get('retry-after')).toBe('1');
    const ran = [a, b].find((r) => r.status === 201 && r.headers.get('idempotent-replayed') === null)!;
    expect(later.status).toBe(201);
    expect(later.headers.get('idempotent-replayed')).toBe('true');
    expect(later.body.assistantMessage.id).toBe(ran.body.assistantMessage.id);
    expect(messages.body.data).toHaveLength(2);
  });

  it('should replay a streamed turn as a stream: the whole answer, then the same stored turn', async () => {
    const conversation = (await api(`${sut.url}/v1/conversations`, { key: sut.keyA, body: { title: 's' } }))
      .body;
    const key = randomUUID();
    const url = `${sut.url}/v1/conversations/${conversation.id}/turns`;
    const body = { content: 'Explain prefix caching.', stream: true };

    const first = await postSse(url, sut.keyA, body, { headers: { 'idempotency-key': key } });
    const again = await postSse(url, sut.keyA, body, { headers: { 'idempotency-key': key } });
    const turn = (r: typeof first) => r.events.find((e) => e.event === 'turn')!.data;
    const tokens = (r: typeof first) =>
      r.events
        .filter((e) => e.event === 'token')
        .map((e) => e.data.delta as string)
        .join('');

    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(turn(again).assistantMessage.id).toBe(turn(first).assistantMessage.id);
    expect(tokens(again)).toBe(tokens(first));
  });

  it('should replay a chat completion, also as an OpenAI chunk stream', async () => {
    const models = (await api(`${sut.url}/v1/models`, { key: sut.keyA })).body;
    const key = randomUUID();
    const body = {
      model: models.data[0].id,
      messages: [{ role: 'user', content: 'Hi there' }],
      stream: true,
    };
    const url = `${sut.url}/v1/chat/completions`;

    const first = await postSse(url, sut.keyA, body, { headers: { 'idempotency-key': key } });
    const again = await postSse(url, sut.keyA, body, { headers: { 'idempotency-key': key } });
    const content = (r: typeof first) =>
      r.events
        .filter((e) => typeof e.data === 'object' && e.data.choices?.[0]?.delta?.content)
        .map((e) => e.data.choices[0].delta.content as string)
        .join('');

    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.events[0].data.id).toBe(first.events[0].data.id);
    expect(content(again)).toBe(content(first));
    expect(again.events.at(-1)!.data).toBe('[DONE]');
  });
});
