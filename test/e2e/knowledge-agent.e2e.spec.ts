import { startEngineSimulator, type RunningSimulator } from '../../src/simulator/simulator.server';
import { fixture, waitForIngestion } from '../factories/knowledge';
import { postSse, type SseEvent } from '../factories/sse';
import { api, startTestApp, type TestApp } from '../factories/test-app';

// Boots the app and runs real queue jobs: slow on a busy shared machine.
jest.setTimeout(180_000);

/**
 * The knowledge agent end to end: documents ingested through the queue, a question over SSE answered
 * with a `citations` event before the tokens, the cited answer cached, and citation-linked
 * invalidation when the cited document changes (an unrelated cached answer survives).
 */
describe('knowledge agent (e2e)', () => {
  let sim: RunningSimulator;
  let sut: TestApp;
  let kb: string;

  const TENT_QUESTION = 'How long is the warranty on the Alpine Ridge Tent?';
  const STOVE_QUESTION = 'How quickly does the Ember Camp Stove boil a litre of water?';

  beforeAll(async () => {
    sim = await startEngineSimulator({ timing: { timeScale: 0 }, replyTokens: { min: 16, max: 32 } });
    sut = await startTestApp({
      INFERENCE_ENDPOINTS: sim.baseURL,
      // No date in the prompt tail: a run across midnight (UTC) would otherwise change the scope.
      PROMPT_DATE_IN_TAIL: 'false',
      // One passage per answer: each answer cites exactly the document that holds it.
      KNOWLEDGE_SEARCH_K: '1',
      QUEUE_JOB_BACKOFF_MS: '10',
    });
    const created = await api(`${sut.url}/v1/knowledge-bases`, { key: sut.keyA, body: { name: 'camping' } });
    expect(created.status).toBe(201);
    kb = created.body.id as string;
    await ingest('tents.md', fixture('tents.md').toString('utf8'), 1);
    await ingest('stoves.txt', fixture('stoves.txt').toString('utf8'), 1);
  });
  afterAll(async () => {
    await sut?.close();
    await sim?.close();
  });

  /** Uploads one document (JSON) and waits on its ingestion through the queue. */
  async function ingest(name: string, content: string, expectedVersion: number): Promise<void> {
    const upload = await api(`${sut.url}/v1/knowledge-bases/${kb}/documents`, {
      key: sut.keyA,
      body: { name, content },
    });
    expect(upload.status).toBe(202);
    const ingestionId = (upload.body.documents?.[0]?.ingestionId ?? upload.body.ingestionId) as string;
    const done = await waitForIngestion(sut.url, sut.keyA, kb, ingestionId);
    expect(done).toMatchObject({ status: 'ready', version: expectedVersion });
  }

  const conversation = async (body: Record<string, unknown>, key = sut.keyA) =>
    api(`${sut.url}/v1/conversations`, { key, body });

  /** A first question in a fresh conversation pinned to the knowledge agent and bound to the knowledge base, over SSE. */
  async function ask(question: string): Promise<{ events: SseEvent[]; turn: any }> {
    const created = await conversation({ agent: 'knowledge', knowledgeBaseIds: [kb] });
    expect(created.status).toBe(201);
    const { status, events } = await postSse(
      `${sut.url}/v1/conversations/${created.body.id}/turns`,
      sut.keyA,
      { content: question },
    );
    expect(status).toBe(200);
    const turn = events.find((e) => e.event === 'turn')?.data;
    expect(turn).toBeDefined();
    return { events, turn };
  }

  /** Polls `read` until `done` holds or a deadline passes (no fixed sleep); returns the last value. */
  async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs;
    let value = await read();
    while (!done(value) && Date.now() < deadline) {
      await new Promise((resolve) => setImmediate(resolve));
      value = await read();
    }
    return value;
  }

  const entries = async (): Promise<number> =>
    (await api(`${sut.url}/v1/cache/stats`, { key: sut.keyA })).body.layers.response.entries as number;

  it('should bind a conversation only to knowledge bases of its own tenant', async () => {
    const bound = await conversation({ knowledgeBaseIds: [kb] });
    expect(bound.status).toBe(201);
    expect(bound.body.knowledgeBaseIds).toEqual([kb]);
    const foreign = await conversation({ knowledgeBaseIds: [kb] }, sut.keyB);
    expect(foreign.status).toBe(400);
    expect(foreign.body.detail).toContain('knowledgeBaseIds');
    expect(foreign.body.detail).toContain(kb);
    const malformed = await conversation({ knowledgeBaseIds: ['not-a-uuid'] });
    expect(malformed.status).toBe(400);
    expect(malformed.body.detail).toContain('knowledgeBaseIds');
  });

  it('should stream citations before the tokens, store them, and stop serving a cached answer once its document changes', async () => {
    // 1. A question over SSE: the citations event names the right document, before any token.
    const first = await ask(TENT_QUESTION);
    const names = first.events.map((e) => e.event);
    expect(names[0]).toBe('citations');
    expect(names.indexOf('citations')).toBeLessThan(names.indexOf('token'));
    const [citation] = first.events[0].data.citations;
    expect(citation).toMatchObject({
      index: 1,
      documentName: 'tents.md',
      knowledgeBaseId: kb,
      version: 1,
      headingPath: ['Alpine Ridge Tent', 'Warranty'],
      score: expect.any(Number),
    });
    expect(citation.end).toBeGreaterThan(citation.start);
    expect(first.turn.assistantMessage.route).toMatchObject({ agent: 'knowledge', classifier: 'pinned' });
    expect(first.turn.assistantMessage.citations).toEqual(first.events[0].data.citations);
    expect(first.turn.assistantMessage.cache.response).toMatchObject({ hit: false });
    // The stored message keeps them.
    const stored = await api(`${sut.url}/v1/conversations/${first.turn.conversationId}/messages`, {
      key: sut.keyA,
    });
    expect(stored.body.data[1].citations).toEqual(first.events[0].data.citations);

    // 2. Another question, citing the other document; both answers are now cached.
    const stove = await ask(STOVE_QUESTION);
    expect(stove.events[0].data.citations.map((c: any) => c.documentName)).toEqual(['stoves.txt']);
    expect((await ask(TENT_QUESTION)).turn.assistantMessage.cache.response).toMatchObject({
      hit: true,
      type: 'exact',
    });
    const repeated = await ask(STOVE_QUESTION);
    expect(repeated.turn.assistantMessage.cache.response).toMatchObject({ hit: true, type: 'exact' });
    // A hit still says where its answer comes from, before the replayed tokens.
    expect(repeated.events[0].event).toBe('citations');
    const held = await entries();
    expect(held).toBe(2);

    // 3. The cited document changes: its answer is purged (the other stays) and no longer served.
    const changed = fixture('tents.md').toString('utf8').replace('5-year warranty', '10-year warranty');
    await ingest('tents.md', changed, 2);
    // The purge runs right after the new version commits (the status is ready a moment before).
    expect(await eventually(entries, (n) => n === held - 1)).toBe(held - 1);
    const after = await ask(TENT_QUESTION);
    expect(after.turn.assistantMessage.cache.response).toMatchObject({ hit: false });
    expect(after.events[0].data.citations[0]).toMatchObject({ documentName: 'tents.md', version: 2 });
    const unrelated = await ask(STOVE_QUESTION);
    expect(unrelated.turn.assistantMessage.cache.response).toMatchObject({ hit: true });
    expect(unrelated.turn.assistantMessage.content).toBe(stove.turn.assistantMessage.content);

    // 4. Deleting a document purges the answers that cited it.
    const docs = await api(`${sut.url}/v1/knowledge-bases/${kb}/documents`, { key: sut.keyA });
    const stoves = (docs.body.data as any[]).find((d) => d.name === 'stoves.txt');
    const before = await entries();
    const removed = await api(`${sut.url}/v1/knowledge-bases/${kb}/documents/${stoves.id}`, {
      key: sut.keyA,
      method: 'DELETE',
    });
    expect(removed.status).toBe(204);
    expect(await entries()).toBe(before - 1);
  });

  it('should describe the binding, the citations and the citations event in the OpenAPI document', async () => {
    const doc = (await api(`${sut.url}/docs-json`)).body;
    expect(doc.components.schemas.CreateConversationDto.properties.knowledgeBaseIds).toMatchObject({
      type: 'array',
    });
    expect(doc.components.schemas.MessageDto.properties.citations).toBeDefined();
    expect(doc.components.schemas.CitationDto.required).toEqual(
      expect.arrayContaining(['documentId', 'version', 'headingPath', 'start', 'end', 'score']),
    );
    const turn = doc.paths['/v1/conversations/{id}/turns'].post;
    expect(turn.description).toContain('`citations` event');
  });

  it('should route a question about the documentation to the knowledge agent when nothing is pinned', async () => {
    const created = await conversation({ knowledgeBaseIds: [kb] });
    const { events } = await postSse(`${sut.url}/v1/conversations/${created.body.id}/turns`, sut.keyA, {
      content: 'What does the manual say about the tent warranty?',
    });
    const turn = events.find((e) => e.event === 'turn')?.data;
    expect(turn.assistantMessage.route).toMatchObject({ agent: 'knowledge', classifier: 'embedding' });
    expect(events[0].event).toBe('citations');
  });
});
