import { randomUUID } from 'node:crypto';
import type { BenchInstance } from '../../bench/harness';
import { startEngineSimulator, type RunningSimulator } from '../../src/simulator/simulator.server';
import { bootApp, call, newConversation, turn } from '../factories/observability-app';
import { until } from '../factories/until';

/** One JSON log line. */
type LogLine = Record<string, any>;

/** Everything the app wrote to stdout while the suite ran (LOG_FORMAT=json goes to process.stdout). */
const written: string[] = [];

/** pino-http's access line: written when the response finishes (or closes without finishing). */
const ACCESS_LINE = new Set(['request completed', 'request aborted', 'request errored']);

/** The JSON lines written since `start`. */
function linesSince(start: number): LogLine[] {
  return written
    .slice(start)
    .join('')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

/**
 * The JSON lines the app wrote while `fn` ran, once the access line of every request id that `fn`
 * returns has been written (it is written when the response closes, after the client saw the response).
 */
async function captureLogs(fn: () => Promise<string[]>): Promise<LogLine[]> {
  const start = written.length;
  const requestIds = await fn();
  const logged = (id: string): boolean =>
    linesSince(start).some((l) => l.requestId === id && ACCESS_LINE.has(l.msg));
  for (const id of requestIds) await until(() => logged(id), `the access line of ${id}`);
  return linesSince(start);
}

describe('structured logs (e2e)', () => {
  let sim: RunningSimulator;
  let app: BenchInstance;
  let stdout: jest.SpiedFunction<typeof process.stdout.write>;

  beforeAll(async () => {
    stdout = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return true;
    });
    sim = await startEngineSimulator({ timing: { timeScale: 0 } });
    app = await bootApp({ LOG_LEVEL: 'info', LOG_FORMAT: 'json', INFERENCE_ENDPOINTS: sim.baseURL });
  });

  afterAll(async () => {
    await app?.close();
    await sim?.close();
    stdout.mockRestore();
  });

  it('should put the request id and tenant id on every line of a turn, and no message content', async () => {
    const requestId = `obs-${randomUUID()}`;
    const content = `confidential-question-${randomUUID()}`;
    let answer = '';
    const id = await newConversation(app);
    const lines = await captureLogs(async () => {
      const res = await turn(app, id, content, {}, { 'x-request-id': requestId });
      expect(res.status).toBe(201);
      expect(res.headers.get('x-request-id')).toBe(requestId);
      answer = res.body.assistantMessage.content;
      return [requestId];
    });

    const ofRequest = lines.filter((l) => l.requestId === requestId);
    const completed = ofRequest.find((l) => l.msg === 'request completed');
    const turnLine = ofRequest.find((l) => l.msg === 'turn completed');
    expect(completed).toMatchObject({ tenantId: app.tenantId, res: { statusCode: 201 } });
    expect(completed?.req.url).toBe(`/v1/conversations/${id}/turns`);
    expect(completed?.req.headers.authorization).toBe('[Redacted]');
    expect(turnLine).toMatchObject({
      tenantId: app.tenantId,
      conversationId: id,
      context: 'Turn',
      source: expect.any(String),
      usage: {
        promptTokens: expect.any(Number),
        cachedTokens: expect.any(Number),
        completionTokens: expect.any(Number),
      },
    });
    // Every line logged while the request ran carries its request id and tenant.
    for (const line of ofRequest) expect(line.tenantId).toBe(app.tenantId);
    const text = JSON.stringify(lines);
    expect(text).not.toContain(content);
    expect(text).not.toContain(answer);
    expect(text).not.toContain(app.apiKey);
  });

  it('should log a streamed turn with its request id, and give every error response a request id', async () => {
    const id = await newConversation(app);
    const streamedId = `obs-stream-${randomUUID()}`;
    const missingId = `obs-404-${randomUUID()}`;
    let generatedId = '';
    const lines = await captureLogs(async () => {
      const res = await fetch(`${app.url}/v1/conversations/${id}/turns`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${app.apiKey}`,
          'content-type': 'application/json',
          accept: 'text/event-stream',
          'x-request-id': streamedId,
        },
        body: JSON.stringify({ content: 'stream it' }),
      });
      expect(res.headers.get('x-request-id')).toBe(streamedId);
      await res.text();
      const missing = await call(app, '/v1/conversations/00000000-0000-4000-8000-000000000000', undefined, {
        'x-request-id': missingId,
      });
      expect(missing.status).toBe(404);
      expect(missing.body.requestId).toBe(missingId);
      const unauthorized = await fetch(`${app.url}/v1/conversations`);
      expect(unauthorized.status).toBe(401);
      generatedId = ((await unauthorized.json()) as { requestId: string }).requestId;
      expect(unauthorized.headers.get('x-request-id')).toBe(generatedId);
      return [streamedId, missingId, generatedId];
    });
    expect(lines.find((l) => l.requestId === streamedId && l.msg === 'turn completed')).toMatchObject({
      tenantId: app.tenantId,
      conversationId: id,
    });
    expect(lines.find((l) => l.requestId === missingId && l.msg === 'request completed')).toMatchObject({
      tenantId: app.tenantId,
      res: { statusCode: 404 },
    });
    const rejected = lines.find((l) => l.requestId === generatedId && l.msg === 'request completed');
    expect(rejected).toMatchObject({ res: { statusCode: 401 } });
    expect(rejected?.tenantId).toBeUndefined();
  });

  it('should log a failed turn with its code, request id and tenant, and no content', async () => {
    const id = await newConversation(app);
    const requestId = `obs-fail-${randomUUID()}`;
    const content = `failing-question-${randomUUID()}`;
    const lines = await captureLogs(async () => {
      sim.engine.setFaults({ errorRate: 1, errorStatus: 500 });
      const res = await turn(app, id, content, {}, { 'x-request-id': requestId }).finally(() =>
        sim.engine.setFaults({ errorRate: 0 }),
      );
      expect(res.status).toBe(502);
      expect(res.body.requestId).toBe(requestId);
      return [requestId];
    });
    expect(
      lines.find((l) => l.requestId === requestId && l.msg === 'turn failed: EngineError'),
    ).toMatchObject({
      level: 40,
      tenantId: app.tenantId,
      conversationId: id,
      code: 'EngineError',
      replica: sim.baseURL,
    });
    expect(lines.find((l) => l.requestId === requestId && l.res?.statusCode === 502)).toMatchObject({
      level: 50,
      tenantId: app.tenantId,
      msg: 'request errored',
    });
    expect(JSON.stringify(lines)).not.toContain(content);
  });

  it('should not access-log probes and scrapes, and log the request after them', async () => {
    const probes = ['/health/live', '/health/ready', '/metrics'].map((path) => ({
      path,
      id: `probe-${randomUUID()}`,
    }));
    const sentinel = `after-probes-${randomUUID()}`;
    const lines = await captureLogs(async () => {
      for (const p of probes) {
        const res = await fetch(`${app.url}${p.path}`, { headers: { 'x-request-id': p.id } });
        expect(res.status).toBe(200);
      }
      // Logged when its response closes, after the probes' (which came first on one connection).
      const res = await fetch(`${app.url}/v1/agents`, { headers: { 'x-request-id': sentinel } });
      expect(res.status).toBe(401);
      return [sentinel];
    });
    expect(lines.some((l) => l.requestId === sentinel && l.msg === 'request completed')).toBe(true);
    for (const p of probes) expect(lines.filter((l) => l.requestId === p.id)).toEqual([]);
  });

  it("should keep each concurrent request's id and conversation on its own lines", async () => {
    const conversations = await Promise.all([1, 2, 3, 4].map(() => newConversation(app)));
    const ids = conversations.map(() => `obs-concurrent-${randomUUID()}`);
    const lines = await captureLogs(async () => {
      const results = await Promise.all(
        conversations.map((c, i) => turn(app, c, `concurrent question ${i}`, {}, { 'x-request-id': ids[i] })),
      );
      expect(results.map((r) => r.status)).toEqual([201, 201, 201, 201]);
      return ids;
    });
    conversations.forEach((c, i) => {
      const completed = lines.filter((l) => l.msg === 'turn completed' && l.conversationId === c);
      expect(completed).toHaveLength(1);
      expect(completed[0]).toMatchObject({ requestId: ids[i], tenantId: app.tenantId });
    });
  });

  it.each([
    ['JSON', 'application/json'],
    ['SSE', 'text/event-stream'],
  ])(
    'should access-log a client that disconnects mid-turn (%s) as a 499 at info, with no error line',
    async (_kind, accept) => {
      const id = await newConversation(app);
      const requestId = `obs-gone-${randomUUID()}`;
      const client = new AbortController();
      // The engine holds the first token back until the client has gone.
      sim.engine.setFaults({ stallMs: 60_000 });
      try {
        const lines = await captureLogs(async () => {
          const response = fetch(`${app.url}/v1/conversations/${id}/turns`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${app.apiKey}`,
              'content-type': 'application/json',
              accept,
              'x-request-id': requestId,
            },
            body: JSON.stringify({ content: 'a question the client will not wait for' }),
            signal: client.signal,
          }).then((r) => r.text());
          await until(() => sim.engine.state().requests.running === 1, 'the engine to start the turn');
          client.abort();
          await expect(response).rejects.toThrow();
          // The turn fails after the access line (the engine request is aborted first); once it has, a
          // later request's access line comes after whatever the error path logged for this one.
          const start = written.length;
          await until(
            () =>
              linesSince(start).some(
                (l) => l.requestId === requestId && l.msg === 'turn aborted by the client',
              ),
            'the turn to fail',
          );
          const sentinel = `obs-after-gone-${randomUUID()}`;
          await call(app, '/v1/agents', undefined, { 'x-request-id': sentinel });
          return [requestId, sentinel];
        });
        const ofRequest = lines.filter((l) => l.requestId === requestId);
        expect(ofRequest.find((l) => ACCESS_LINE.has(l.msg))).toMatchObject({
          level: 30,
          msg: 'request aborted',
          res: { statusCode: 499 },
        });
        expect(ofRequest.filter((l) => l.level >= 50)).toEqual([]);
        expect(sim.engine.state().requests.running).toBe(0);
      } finally {
        sim.engine.setFaults({ stallMs: 0 });
      }
    },
  );
});
