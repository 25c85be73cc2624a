import { startEngineSimulator, type RunningSimulator } from '../../src/simulator/simulator.server';
import { api, startTestApp, type TestApp } from '../factories/test-app';
import { postSse } from '../factories/sse';

/**
 * The walking skeleton end to end: the app on a real port, the engine simulator as the engine
 * (a separate server this suite controls, so it can inject faults), real Redis, PGlite.
 */
describe('conversations (e2e)', () => {
  let sim: RunningSimulator;
  let sut: TestApp;

  beforeAll(async () => {
    sim = await startEngineSimulator({ timing: { timeScale: 0 }, replyTokens: { min: 24, max: 48 } });
    // Streamed tokens after the first may share writes (SSE_FLUSH_INTERVAL_MS): the streams below must
    // still carry every token, in order, then the turn. Other suites stream with the default (0).
    sut = await startTestApp({
      INFERENCE_ENDPOINTS: sim.baseURL,
      MAX_MESSAGE_CHARS: '2000',
      SSE_FLUSH_INTERVAL_MS: '20',
    });
  });

  afterAll(async () => {
    await sut?.close();
    await sim?.close();
  });

  afterEach(() => sim.engine.setFaults({ errorRate: 0, cutStreamAfterTokens: null, stallMs: 0 }));

  const createConversation = async (key = sut.keyA, body: object = { title: 't' }): Promise<string> => {
    const res = await api(`${sut.url}/v1/conversations`, { key, body });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };

  it('should answer two turns and report engine cached tokens rising on the second', async () => {
    const id = await createConversation();
    const first = await api(`${sut.url}/v1/conversations/${id}/turns`, {
      key: sut.keyA,
      body: { content: 'What is a KV cache?' },
    });
    expect(first.status).toBe(201);
    expect(first.body.userMessage).toMatchObject({
      sequence: 1,
      role: 'user',
      status: 'complete',
      content: 'What is a KV cache?',
    });
    expect(first.body.assistantMessage).toMatchObject({ sequence: 2, role: 'assistant', status: 'complete' });
    expect(first.body.assistantMessage.content.length).toBeGreaterThan(0);
    expect(first.body.assistantMessage.usage.promptTokens).toBeGreaterThan(0);
    expect(first.body.assistantMessage.usage.completionTokens).toBeGreaterThan(0);
    expect(first.body.assistantMessage.timings.ttftMs).toBeGreaterThanOrEqual(0);
    expect(first.body.assistantMessage.timings.totalMs).toBeGreaterThanOrEqual(
      first.body.assistantMessage.timings.ttftMs,
    );

    const second = await api(`${sut.url}/v1/conversations/${id}/turns`, {
      key: sut.keyA,
      body: { content: 'And why does prefix caching help multi-turn chat?', maxTokens: 16 },
    });
    expect(second.status).toBe(201);
    expect(second.body.userMessage.sequence).toBe(3);
    expect(second.body.assistantMessage.sequence).toBe(4);
    // Turn 2's prompt starts with turn 1's prompt and answer: the engine serves those blocks from cache.
    expect(second.body.assistantMessage.usage.cachedTokens).toBeGreaterThan(0);
    expect(second.body.assistantMessage.usage.cachedTokens).toBeGreaterThanOrEqual(
      first.body.assistantMessage.usage.promptTokens - 16,
    );
    expect(second.body.assistantMessage.cache.prefixReuse).toBeCloseTo(
      second.body.assistantMessage.usage.cachedTokens / second.body.assistantMessage.usage.promptTokens,
      5,
    );
    expect(second.body.assistantMessage.usage.completionTokens).toBeLessThanOrEqual(16);

    const conversation = await api(`${sut.url}/v1/conversations/${id}`, { key: sut.keyA });
    expect(conversation.body).toMatchObject({ id, title: 't', messageCount: 4 });
  });

  it('should store and replay byte for byte a message full of SQL syntax, placeholders and non-ASCII text', async () => {
    // The turn's two statements send values as bind parameters: nothing in a message is SQL.
    const tricky = `It's "quoted" \\ back\\slash ? ?? $1 :name @x -- comment; drop table messages; ' or '1'='1 — 東京 😀\n\ttab`;
    const id = await createConversation(sut.keyA, {
      title: 'O\'Brien\'s "chat"',
      metadata: { userName: 'Zoë' },
    });
    const first = await api(`${sut.url}/v1/conversations/${id}/turns`, {
      key: sut.keyA,
      body: { content: tricky },
    });
    expect(first.status).toBe(201);
    expect(first.body.userMessage.content).toBe(tricky);
    const second = await api(`${sut.url}/v1/conversations/${id}/turns`, {
      key: sut.keyA,
      body: { content: 'Again?' },
    });
    expect(second.status).toBe(201);
    expect(second.body.userMessage.sequence).toBe(3);
    // The first turn's prompt was replayed exactly as sent: the engine served it from its prefix cache.
    expect(second.body.assistantMessage.usage.cachedTokens).toBeGreaterThanOrEqual(
      first.body.assistantMessage.usage.promptTokens - 16,
    );
    const messages = await api(`${sut.url}/v1/conversations/${id}/messages`, { key: sut.keyA });
    expect(messages.body.data.map((m: any) => m.content)).toEqual([
      tricky,
      first.body.assistantMessage.content,
      'Again?',
      second.body.assistantMessage.content,
    ]);
    expect(messages.body.data[1].route).toEqual(first.body.assistantMessage.route);
    const conversation = await api(`${sut.url}/v1/conversations/${id}`, { key: sut.keyA });
    expect(conversation.body).toMatchObject({ title: 'O\'Brien\'s "chat"', messageCount: 4 });
    expect(new Date(conversation.body.lastTurnAt).getTime()).toBeGreaterThanOrEqual(
      new Date(second.body.userMessage.createdAt).getTime() - 1,
    );
  });

  it('should stream token events then one turn event carrying the stored message', async () => {
    const id = await createConversation();
    const res = await postSse(`${sut.url}/v1/conversations/${id}/turns`, sut.keyA, {
      content: 'Stream me an answer',
      stream: true,
    });
    expect(res.status).toBe(200);
    expect(res.contentType).toContain('text/event-stream');
    const tokens = res.events.filter((e) => e.event === 'token');
    const final = res.events.filter((e) => e.event === 'turn');
    expect(tokens.length).toBeGreaterThan(1);
    expect(final).toHaveLength(1);
    expect(res.events.at(-1)?.event).toBe('turn');
    const streamed = tokens.map((e) => e.data.delta as string).join('');
    expect(final[0].data.assistantMessage.content).toBe(streamed);

    const messages = await api(`${sut.url}/v1/conversations/${id}/messages`, { key: sut.keyA });
    expect(messages.body.data.map((m: any) => m.content)).toEqual(['Stream me an answer', streamed]);
  });

  it('should page conversations newest first and messages in order with cursors', async () => {
    const { key } = await sut.keys.create(`pager-${Date.now()}`);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await createConversation(key, { title: `c${i}` }));
    const page1 = await api(`${sut.url}/v1/conversations?limit=2`, { key });
    expect(page1.body.data.map((c: any) => c.id)).toEqual([ids[4], ids[3]]);
    const page2 = await api(`${sut.url}/v1/conversations?limit=2&cursor=${page1.body.nextCursor}`, { key });
    expect(page2.body.data.map((c: any) => c.id)).toEqual([ids[2], ids[1]]);
    const page3 = await api(`${sut.url}/v1/conversations?limit=2&cursor=${page2.body.nextCursor}`, { key });
    expect(page3.body.data.map((c: any) => c.id)).toEqual([ids[0]]);
    expect(page3.body.nextCursor).toBeNull();

    for (let i = 0; i < 2; i++) {
      await api(`${sut.url}/v1/conversations/${ids[0]}/turns`, {
        key,
        body: { content: `q${i}`, maxTokens: 4 },
      });
    }
    const m1 = await api(`${sut.url}/v1/conversations/${ids[0]}/messages?limit=3`, { key });
    expect(m1.body.data.map((m: any) => m.sequence)).toEqual([1, 2, 3]);
    const m2 = await api(
      `${sut.url}/v1/conversations/${ids[0]}/messages?limit=3&cursor=${m1.body.nextCursor}`,
      { key },
    );
    expect(m2.body.data.map((m: any) => m.sequence)).toEqual([4]);
    expect(m2.body.nextCursor).toBeNull();
  });

  it('should serialise concurrent turns so sequences never collide or skip', async () => {
    const id = await createConversation();
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        api(`${sut.url}/v1/conversations/${id}/turns`, {
          key: sut.keyA,
          body: { content: `parallel ${i}`, maxTokens: 8 },
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(6).fill(201));
    const messages = await api(`${sut.url}/v1/conversations/${id}/messages?limit=100`, { key: sut.keyA });
    const rows = messages.body.data as any[];
    expect(rows.map((m) => m.sequence)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(rows.map((m) => m.role)).toEqual(
      Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? 'user' : 'assistant')),
    );
    // Each answer was generated after the previous turn was stored: its prompt grew turn by turn.
    const prompts = rows.filter((m) => m.role === 'assistant').map((m) => m.usage.promptTokens as number);
    expect([...prompts].sort((a, b) => a - b)).toEqual(prompts);
  });

  it('should reject invalid bodies with a 400 problem naming the field', async () => {
    const id = await createConversation();
    const missing = await api(`${sut.url}/v1/conversations/${id}/turns`, { key: sut.keyA, body: {} });
    expect(missing.status).toBe(400);
    expect(missing.headers.get('content-type')).toContain('application/problem+json');
    expect(missing.body).toMatchObject({ status: 400, code: 'ValidationFailed' });
    expect(missing.body.detail).toMatch(/content/);

    const wrongType = await api(`${sut.url}/v1/conversations/${id}/turns`, {
      key: sut.keyA,
      body: { content: 'x', maxTokens: 'many' },
    });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.errors.join(' ')).toMatch(/maxTokens/);

    const unknown = await api(`${sut.url}/v1/conversations/${id}/turns`, {
      key: sut.keyA,
      body: { content: 'x', cache_salt: 'mine' },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.detail).toMatch(/cache_salt/);

    const badJson = await api(`${sut.url}/v1/conversations`, { key: sut.keyA, body: '{"title":' });
    expect(badJson.status).toBe(400);
    expect(badJson.body.requestId).toEqual(expect.any(String));
  });

  it('should answer 404 for unknown ids and for another tenant’s conversation, 400 for a malformed id', async () => {
    const id = await createConversation(sut.keyA);
    const unknown = await api(`${sut.url}/v1/conversations/00000000-0000-4000-8000-000000000000`, {
      key: sut.keyA,
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('ConversationNotFound');

    for (const path of ['', '/messages']) {
      const foreign = await api(`${sut.url}/v1/conversations/${id}${path}`, { key: sut.keyB });
      expect(foreign.status).toBe(404);
    }
    const foreignTurn = await api(`${sut.url}/v1/conversations/${id}/turns`, {
      key: sut.keyB,
      body: { content: 'hi' },
    });
    expect(foreignTurn.status).toBe(404);
    const foreignDelete = await api(`${sut.url}/v1/conversations/${id}`, { key: sut.keyB, method: 'DELETE' });
    expect(foreignDelete.status).toBe(404);
    const listB = await api(`${sut.url}/v1/conversations?limit=100`, { key: sut.keyB });
    expect(listB.body.data.map((c: any) => c.id)).not.toContain(id);

    const malformed = await api(`${sut.url}/v1/conversations/not-a-uuid`, { key: sut.keyA });
    expect(malformed.status).toBe(400);
  });

  it('should answer 401 without a key, with a wrong key and with a revoked key', async () => {
    expect((await api(`${sut.url}/v1/conversations`)).status).toBe(401);
    const wrong = await api(`${sut.url}/v1/conversations`, { key: 'kvc_wrong' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.code).toBe('Unauthorized');
    const created = await sut.keys.create(`revoked-${Date.now()}`);
    expect((await api(`${sut.url}/v1/conversations`, { key: created.key })).status).toBe(200);
    await sut.keys.revoke(created.key);
    expect((await api(`${sut.url}/v1/conversations`, { key: created.key })).status).toBe(401);
  });

  it('should reject an oversized message with 413 and store nothing', async () => {
    const id = await createConversation();
    const res = await api(`${sut.url}/v1/conversations/${id}/turns`, {
      key: sut.keyA,
      body: { content: 'x'.repeat(2001) },
    });
    expect(res.status).toBe(413);
    expect(res.body.code).toBe('PayloadTooLarge');
    const huge = await api(`${sut.url}/v1/conversations/${id}/turns`, {
      key: sut.keyA,
      body: { content: 'x'.repeat(2_000_000) },
    });
    expect(huge.status).toBe(413);
    const conversation = await api(`${sut.url}/v1/conversations/${id}`, { key: sut.keyA });
    expect(conversation.body.messageCount).toBe(0);
  });

  it('should store nothing for a turn rejected before the engine: validation, context length', async () => {
    const id = await createConversation();
    const invalid = await api(`${sut.url}/v1/conversations/${id}/turns`, {
      key: sut.keyA,
      body: { content: 'hello', temperature: 9 },
    });
    expect(invalid.status).toBe(400);
    // Swagger's old default body: more answer tokens than the context window holds.
    const tooLong = await api(`${sut.url}/v1/conversations/${id}/turns`, {
      key: sut.keyA,
      body: { content: 'hello', maxTokens: 32768 },
    });
    expect(tooLong.status).toBe(400);
    const messages = await api(`${sut.url}/v1/conversations/${id}/messages`, { key: sut.keyA });
    expect(messages.body.data).toEqual([]);
    const conversation = await api(`${sut.url}/v1/conversations/${id}`, { key: sut.keyA });
    expect(conversation.body.messageCount).toBe(0);
  });

  it('should keep the conversation consistent when the engine fails, and continue after it recovers', async () => {
    const id = await createConversation();
    await api(`${sut.url}/v1/conversations/${id}/turns`, {
      key: sut.keyA,
      body: { content: 'first', maxTokens: 8 },
    });
    sim.engine.setFaults({ errorRate: 1, errorStatus: 503 });
    const failed = await api(`${sut.url}/v1/conversations/${id}/turns`, {
      key: sut.keyA,
      body: { content: 'second' },
    });
    expect(failed.status).toBe(503);
    expect(failed.body.code).toBe('EngineUnavailable');

    sim.engine.setFaults({ errorRate: 1, errorStatus: 500 });
    const broken = await api(`${sut.url}/v1/conversations/${id}/turns`, {
      key: sut.keyA,
      body: { content: 'third' },
    });
    expect(broken.status).toBe(502);
    expect(broken.body.code).toBe('EngineError');

    sim.engine.setFaults({ errorRate: 0 });
    const recovered = await api(`${sut.url}/v1/conversations/${id}/turns`, {
      key: sut.keyA,
      body: { content: 'fourth', maxTokens: 8 },
    });
    expect(recovered.status).toBe(201);
    const messages = (await api(`${sut.url}/v1/conversations/${id}/messages`, { key: sut.keyA })).body
      .data as any[];
    expect(messages.map((m) => [m.sequence, m.role, m.status])).toEqual([
      [1, 'user', 'complete'],
      [2, 'assistant', 'complete'],
      [3, 'user', 'failed'],
      [4, 'user', 'failed'],
      [5, 'user', 'complete'],
      [6, 'assistant', 'complete'],
    ]);
    expect(messages[2].error).toMatchObject({ code: 'EngineUnavailable' });
    expect(messages[3].error).toMatchObject({ code: 'EngineError' });
  });

  it('should send an error event and store no answer when the engine cuts the stream', async () => {
    const id = await createConversation();
    sim.engine.setFaults({ cutStreamAfterTokens: 3 });
    const res = await postSse(`${sut.url}/v1/conversations/${id}/turns`, sut.keyA, {
      content: 'cut me off',
      maxTokens: 40,
    });
    expect(res.events.filter((e) => e.event === 'token').length).toBeGreaterThan(0);
    const last = res.events.at(-1);
    expect(last?.event).toBe('error');
    if (last?.data.code !== 'EngineStreamCut') console.log(last?.data);
    expect(last?.data).toMatchObject({
      status: 502,
      code: 'EngineStreamCut',
      detail: expect.any(String) as string,
    });
    const messages = (await api(`${sut.url}/v1/conversations/${id}/messages`, { key: sut.keyA })).body
      .data as any[];
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ role: 'user', status: 'failed', error: { code: 'EngineStreamCut' } });
  });

  it('should abort the engine request when the client disconnects mid-stream', async () => {
    const slow = await startEngineSimulator({
      timing: { timeScale: 1, itlMs: 50 },
      replyTokens: { min: 200, max: 200 },
    });
    const app = await startTestApp({ INFERENCE_ENDPOINTS: slow.baseURL });
    try {
      const id = (await api(`${app.url}/v1/conversations`, { key: app.keyA, body: {} })).body.id as string;
      const controller = new AbortController();
      await expect(
        postSse(
          `${app.url}/v1/conversations/${id}/turns`,
          app.keyA,
          { content: 'a long answer please', maxTokens: 200 },
          {
            signal: controller.signal,
            onEvent: (e) => {
              if (e.event === 'token') controller.abort();
            },
          },
        ),
      ).rejects.toThrow();
      // The engine stops generating: its running count drops to zero long before 200 tokens x 50 ms.
      await waitFor(async () => (await stateOf(slow)).running === 0, 3000);
      await waitFor(async () => {
        const rows = (await api(`${app.url}/v1/conversations/${id}/messages`, { key: app.keyA })).body
          .data as any[];
        return rows.length === 1 && rows[0].status === 'failed';
      }, 3000);
      const rows = (await api(`${app.url}/v1/conversations/${id}/messages`, { key: app.keyA })).body
        .data as any[];
      expect(rows[0].error.code).toBe('RequestAborted');
    } finally {
      await app.close();
      await slow.close();
    }
  });

  it('should answer 503 and mark the turn failed when no engine replica is reachable', async () => {
    const app = await startTestApp({ INFERENCE_ENDPOINTS: 'http://127.0.0.1:9/v1', INFERENCE_MODEL: 'm' });
    try {
      const id = (await api(`${app.url}/v1/conversations`, { key: app.keyA, body: {} })).body.id as string;
      const res = await api(`${app.url}/v1/conversations/${id}/turns`, {
        key: app.keyA,
        body: { content: 'anyone?' },
      });
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('EngineUnavailable');
      const again = await api(`${app.url}/v1/conversations/${id}/turns`, {
        key: app.keyA,
        body: { content: 'still?' },
      });
      expect(again.status).toBe(503);
      const rows = (await api(`${app.url}/v1/conversations/${id}/messages`, { key: app.keyA })).body
        .data as any[];
      expect(rows.map((m) => [m.sequence, m.status])).toEqual([
        [1, 'failed'],
        [2, 'failed'],
      ]);
      const ready = await api(`${app.url}/health/ready`);
      expect(ready.status).toBe(503);
      expect(JSON.stringify(ready.body.error)).toContain('engine');
    } finally {
      await app.close();
    }
  });

  it('should delete a conversation and its messages', async () => {
    const id = await createConversation();
    await api(`${sut.url}/v1/conversations/${id}/turns`, {
      key: sut.keyA,
      body: { content: 'bye', maxTokens: 4 },
    });
    const del = await api(`${sut.url}/v1/conversations/${id}`, { key: sut.keyA, method: 'DELETE' });
    expect(del.status).toBe(204);
    expect((await api(`${sut.url}/v1/conversations/${id}`, { key: sut.keyA })).status).toBe(404);
    expect((await api(`${sut.url}/v1/conversations/${id}/messages`, { key: sut.keyA })).status).toBe(404);
  });

  it('should serve health without a key and report every component ready', async () => {
    const live = await api(`${sut.url}/health/live`);
    expect(live.status).toBe(200);
    const ready = await api(`${sut.url}/health/ready`);
    expect(ready.status).toBe(200);
    expect(Object.keys(ready.body.info)).toEqual(expect.arrayContaining(['database', 'redis', 'engine']));
  });

  it('should serve the OpenAPI document with every route and problem responses', async () => {
    const html = await fetch(`${sut.url}/docs`);
    expect(html.status).toBe(200);
    expect(await html.text()).toContain('swagger');
    const doc = (await api(`${sut.url}/docs-json`)).body;
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/conversations',
        '/v1/conversations/{id}',
        '/v1/conversations/{id}/turns',
        '/v1/conversations/{id}/messages',
        '/health/live',
        '/health/ready',
      ]),
    );
    const turn = doc.paths['/v1/conversations/{id}/turns'].post;
    expect(Object.keys(turn.responses)).toEqual(
      expect.arrayContaining(['201', '400', '401', '404', '413', '502', '503', '504']),
    );
    expect(doc.components.schemas.PostTurnDto.required).toContain('content');
    // The body is read by SchemaBody (a custom decorator), documented by @ApiBody.
    expect(turn.requestBody.content['application/json'].schema.$ref).toBe('#/components/schemas/PostTurnDto');
  });
});

async function stateOf(sim: RunningSimulator): Promise<{ running: number }> {
  const res = await fetch(`${sim.url}/sim/state`);
  const body = (await res.json()) as { requests?: { running?: number }; running?: number };
  return { running: body.requests?.running ?? body.running ?? -1 };
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}
