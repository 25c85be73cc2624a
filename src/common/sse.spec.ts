import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createParser } from 'eventsource-parser';
import Fastify, { type FastifyInstance } from 'fastify';
import { request } from 'undici';
import { SseWriter } from './sse';

/**
 * SseWriter on a real socket: a Fastify route streams a script of events; the test reads the response
 * as it arrives and records, for each event, when it reached the client. The server counts its socket
 * writes (net.Socket's `_writeGeneric`: one per syscall, single or vectored), which is what
 * `flushIntervalMs` is about.
 */
describe('SseWriter', () => {
  let app: FastifyInstance;
  let url: string;
  /** Socket writes of the last response, counted on the server. */
  let writes = 0;
  /** What the route streams: `[event, data, hold, delayMsBefore]`. */
  let script: Array<[string, unknown, boolean, number]> = [];
  let flushIntervalMs = 0;

  beforeAll(async () => {
    app = Fastify();
    app.get('/stream', async (req, reply) => {
      const socket = reply.raw.socket!;
      writes = 0;
      // Every write that reaches the socket's handle (a syscall) goes through net.Socket's _writeGeneric,
      // for one buffer or many (writev); writes made while corked are only buffered.
      const target = socket as unknown as { _writeGeneric: (...a: unknown[]) => unknown };
      const writeGeneric = target._writeGeneric.bind(socket);
      target._writeGeneric = (...args: unknown[]) => {
        writes++;
        return writeGeneric(...args);
      };
      const sse = new SseWriter(reply, { flushIntervalMs, headers: { 'x-test': 'yes' } });
      for (const [event, data, hold, delay] of script) {
        if (delay > 0) await sleep(delay);
        sse.send(event, data, hold);
      }
      sse.end();
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/stream`;
  });

  afterAll(() => app.close());

  /** Reads the stream; returns each event with the ms since the request was sent when it arrived. */
  async function read(): Promise<{
    events: Array<{ event: string; data: unknown; atMs: number }>;
    headers: Record<string, unknown>;
  }> {
    const started = performance.now();
    const res = await request(url);
    const events: Array<{ event: string; data: unknown; atMs: number }> = [];
    let atMs = 0;
    const parser = createParser({
      onEvent: (e) => events.push({ event: e.event ?? 'message', data: JSON.parse(e.data), atMs }),
    });
    const decoder = new TextDecoder();
    for await (const chunk of res.body) {
      atMs = performance.now() - started;
      parser.feed(decoder.decode(chunk as Buffer, { stream: true }));
    }
    return { events, headers: res.headers };
  }

  const tokens = (n: number, gapMs: number): Array<[string, unknown, boolean, number]> =>
    Array.from(
      { length: n },
      (_, i) => ['token', { delta: `t${i}` }, true, gapMs] as [string, unknown, boolean, number],
    );

  it('sends every event in order with the stream headers and the extra ones', async () => {
    flushIntervalMs = 0;
    script = [['citations', { citations: [] }, false, 0], ...tokens(5, 2), ['turn', { id: 'x' }, false, 0]];
    const { events, headers } = await read();
    expect(events.map((e) => e.event)).toEqual([
      'citations',
      'token',
      'token',
      'token',
      'token',
      'token',
      'turn',
    ]);
    expect(events.slice(1, 6).map((e) => (e.data as { delta: string }).delta)).toEqual([
      't0',
      't1',
      't2',
      't3',
      't4',
    ]);
    expect(headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(headers['x-test']).toBe('yes');
  });

  it('with an interval, batches held tokens into fewer writes and keeps their order', async () => {
    flushIntervalMs = 0;
    script = tokens(20, 4);
    await read();
    const writesEach = writes;

    flushIntervalMs = 60;
    const { events } = await read();
    const writesBatched = writes;
    expect(events.map((e) => (e.data as { delta: string }).delta)).toEqual(
      Array.from({ length: 20 }, (_, i) => `t${i}`),
    );
    // 20 tokens 4+ ms apart: one write per token (and the headers) without an interval; with 60 ms, the
    // first token, then one write per 60 ms of the remaining ~76+ ms, and the end.
    expect(writesEach).toBeGreaterThanOrEqual(15);
    expect(writesBatched).toBeLessThanOrEqual(8);
  });

  it('never holds the first token, nor an event that is not held', async () => {
    flushIntervalMs = 500;
    // The first token after 30 ms; a held token 10 ms later; then a citations event 30 ms later, which is
    // not held and takes the held token with it, in order; then the stream waits 300 ms before its end.
    script = [
      ['token', { delta: 'first' }, true, 30],
      ['token', { delta: 'second' }, true, 10],
      ['citations', { citations: [] }, false, 30],
      ['token', { delta: 'third' }, true, 300],
    ];
    const { events } = await read();
    expect(events.map((e) => e.event)).toEqual(['token', 'token', 'citations', 'token']);
    const [first, second, citations, third] = events;
    // The first token is not held for the interval (500 ms).
    expect(first.atMs).toBeLessThan(250);
    // The held second token left with the citations event, not 500 ms after the first.
    expect(second.atMs).toBe(citations.atMs);
    expect(citations.atMs).toBeLessThan(400);
    // The last held token left with the end of the stream, before its interval ran out.
    expect(third.atMs - citations.atMs).toBeLessThan(480);
  });
});
