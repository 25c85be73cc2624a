import { createServer } from 'node:net';
import type { BenchInstance } from '../../bench/harness';
import { TracingService } from '../../src/observability/tracing.service';
import { startEngineSimulator, type RunningSimulator } from '../../src/simulator/simulator.server';
import {
  startLangfuseReceiver,
  type IngestionEvent,
  type LangfuseReceiver,
} from '../factories/langfuse-receiver';
import {
  bootApp,
  metricSum,
  newConversation,
  scrape,
  streamedTurn,
  turn,
} from '../factories/observability-app';

const KEYS = { LANGFUSE_PUBLIC_KEY: 'pk-lf-test', LANGFUSE_SECRET_KEY: 'sk-lf-test' };

/** The trace ids (one per turn) the receiver got for a conversation, in order. */
function tracesOf(receiver: LangfuseReceiver, conversationId: string): string[] {
  return receiver.events
    .filter((e) => e.type === 'trace-create' && e.body.sessionId === conversationId)
    .map((e) => e.body.id as string);
}

/** The merged body of one observation (its create event, then its updates). */
function observation(
  events: IngestionEvent[],
  type: 'span' | 'generation',
  name: string,
): Record<string, any> {
  const created = events.find((e) => e.type === `${type}-create` && e.body.name === name);
  if (!created) throw new Error(`no ${type} named ${name}`);
  const updates = events.filter((e) => e.type === `${type}-update` && e.body.id === created.body.id);
  return Object.assign({}, created.body, ...updates.map((u) => u.body));
}

/** The merged body of a trace (its create event, then its updates). */
function traceBody(events: IngestionEvent[], traceId: string): Record<string, any> {
  return Object.assign(
    {},
    ...events.filter((e) => e.type === 'trace-create' && e.body.id === traceId).map((e) => e.body),
  );
}

/** A loopback port nothing listens on (connections are refused). */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Prices of the served model for the cost assertions, USD per million tokens. */
const PRICE = { input: 3, cachedInput: 0.75, output: 12 };

describe('Langfuse tracing (local ingestion receiver)', () => {
  describe('with a working Langfuse', () => {
    let receiver: LangfuseReceiver;
    let sim: RunningSimulator;
    let app: BenchInstance;

    beforeAll(async () => {
      receiver = await startLangfuseReceiver();
      sim = await startEngineSimulator({ timing: { timeScale: 0 } });
      const served = (await (await fetch(`${sim.baseURL}/models`)).json()) as { data: { id: string }[] };
      app = await bootApp({
        ...KEYS,
        LANGFUSE_BASEURL: receiver.url,
        LANGFUSE_FLUSH_INTERVAL_MS: '20',
        INFERENCE_ENDPOINTS: sim.baseURL,
        USAGE_PRICES: JSON.stringify({ [served.data[0].id]: PRICE }),
      });
    });

    afterAll(async () => {
      await app?.close();
      await sim?.close();
      await receiver?.close();
    });

    it('should deliver one trace per turn with the route span and an engine generation carrying usage and cached tokens', async () => {
      const id = await newConversation(app);
      const first = await turn(app, id, 'What is a KV cache and why does it matter for chat?');
      expect(first.status).toBe(201);
      const second = await turn(app, id, 'And how does prefix caching help a second turn?');
      expect(second.status).toBe(201);
      await app.running.app.get(TracingService).flush();
      await receiver.waitFor(() => {
        const traces = tracesOf(receiver, id);
        return (
          traces.length === 2 &&
          traces.every((t) =>
            receiver
              .eventsOf(t)
              .some(
                (e) => e.body.output !== undefined && e.type === 'trace-create' && e.body.metadata?.source,
              ),
          )
        );
      });

      expect(receiver.authorizations[0]).toBe(
        `Basic ${Buffer.from('pk-lf-test:sk-lf-test').toString('base64')}`,
      );
      const [t1, t2] = tracesOf(receiver, id);
      for (const [traceId, res, question] of [
        [t1, first, 'What is a KV cache and why does it matter for chat?'],
        [t2, second, 'And how does prefix caching help a second turn?'],
      ] as const) {
        const events = receiver.eventsOf(traceId);
        const trace = traceBody(events, traceId);
        expect(trace).toMatchObject({
          name: 'turn',
          sessionId: id,
          userId: app.tenantId,
          input: question,
          output: res.body.assistantMessage.content,
          metadata: expect.objectContaining({
            source: 'engine',
            agent: res.body.assistantMessage.route.agent,
            replica: res.body.assistantMessage.replica,
            messageId: res.body.assistantMessage.id,
            usage: res.body.assistantMessage.usage,
          }),
        });
        expect(trace.tags).toEqual(expect.arrayContaining(['engine']));

        const route = observation(events, 'span', 'route');
        expect(route.traceId).toBe(traceId);
        expect(route.endTime).toBeDefined();
        expect(route.output).toMatchObject({ agent: res.body.assistantMessage.route.agent });

        const generation = observation(events, 'generation', 'engine');
        expect(generation.traceId).toBe(traceId);
        expect(generation.model).toBe(res.body.assistantMessage.model);
        expect(generation.output).toBe(res.body.assistantMessage.content);
        expect(JSON.stringify(generation.input)).toContain(question);
        const { promptTokens, completionTokens, cachedTokens } = res.body.assistantMessage.usage;
        expect(generation.usageDetails).toEqual({
          input: promptTokens - cachedTokens,
          input_cached_tokens: cachedTokens,
          output: completionTokens,
          total: promptTokens + completionTokens,
        });
        // The generation's cost, at the ledger's prices (USD per million tokens), as the turn's savings report it.
        const cost = {
          input: ((promptTokens - cachedTokens) * PRICE.input) / 1e6,
          input_cached_tokens: (cachedTokens * PRICE.cachedInput) / 1e6,
          output: (completionTokens * PRICE.output) / 1e6,
        };
        for (const [k, v] of Object.entries(cost)) expect(generation.costDetails[k]).toBeCloseTo(v, 9);
        expect(generation.costDetails.total).toBeCloseTo(res.body.assistantMessage.savings.cost, 9);
        expect(generation.metadata).toMatchObject({
          replica: res.body.assistantMessage.replica,
          templateVersion: res.body.assistantMessage.templateVersion,
          prefixReuse: res.body.assistantMessage.cache.prefixReuse,
          usage: res.body.assistantMessage.usage,
          // The catalogue target and its attempts (without a catalogue file: the engine replicas).
          deployment: 'engine',
          provider: 'vllm',
          attempts: [expect.objectContaining({ deployment: 'engine', outcome: 'ok' })],
        });
        const start = Date.parse(generation.startTime);
        const firstToken = Date.parse(generation.completionStartTime);
        const end = Date.parse(generation.endTime);
        expect(firstToken).toBeGreaterThanOrEqual(start);
        expect(end).toBeGreaterThanOrEqual(firstToken);
      }
      // The second turn's prompt starts with the first turn: the engine reports cached tokens.
      const secondGeneration = observation(receiver.eventsOf(t2), 'generation', 'engine');
      expect(second.body.assistantMessage.usage.cachedTokens).toBeGreaterThan(0);
      expect(secondGeneration.usageDetails.input_cached_tokens).toBe(
        second.body.assistantMessage.usage.cachedTokens,
      );
    });

    it('should trace a streamed turn with completionStartTime at the first token', async () => {
      const id = await newConversation(app);
      const res = await streamedTurn(app, id, 'Stream an answer about block hashing');
      expect(res.status).toBe(200);
      const final = res.events.find((e) => e.event === 'turn')?.data;
      expect(final).toBeDefined();
      await app.running.app.get(TracingService).flush();
      await receiver.waitFor(
        () =>
          tracesOf(receiver, id).length === 1 &&
          receiver.eventsOf(tracesOf(receiver, id)[0]).some((e) => e.body.metadata?.streamed === true),
      );
      const traceId = tracesOf(receiver, id)[0];
      await receiver.waitFor(() =>
        receiver.eventsOf(traceId).some((e) => e.type === 'trace-create' && e.body.output !== undefined),
      );
      const events = receiver.eventsOf(traceId);
      expect(traceBody(events, traceId)).toMatchObject({
        sessionId: id,
        userId: app.tenantId,
        output: final.assistantMessage.content,
        metadata: expect.objectContaining({ streamed: true, source: 'engine' }),
      });
      const generation = observation(events, 'generation', 'engine');
      expect(generation.completionStartTime).toBeDefined();
      expect(Date.parse(generation.completionStartTime)).toBeLessThanOrEqual(Date.parse(generation.endTime));
      expect(generation.usageDetails.output).toBe(final.assistantMessage.usage.completionTokens);
    });

    it('should trace exact and semantic response-cache hits as a response-cache span and no generation', async () => {
      const question = 'How do I rotate the API keys of one tenant without downtime?';
      const paraphrase = 'How can I rotate the API keys of one tenant without any downtime?';
      const [a, b, c] = [await newConversation(app), await newConversation(app), await newConversation(app)];
      const miss = await turn(app, a, question);
      expect(miss.status).toBe(201);
      expect(miss.body.assistantMessage.cache.response).toMatchObject({ hit: false });
      const exact = await turn(app, b, question);
      expect(exact.body.assistantMessage.cache.response).toMatchObject({ hit: true, type: 'exact' });
      const semantic = await turn(app, c, paraphrase);
      expect(semantic.body.assistantMessage.cache.response).toMatchObject({ hit: true, type: 'semantic' });
      await app.running.app.get(TracingService).flush();
      const finished = (conversationId: string) => () =>
        tracesOf(receiver, conversationId).length === 1 &&
        receiver
          .eventsOf(tracesOf(receiver, conversationId)[0])
          .some((e) => e.type === 'trace-create' && e.body.output !== undefined);
      for (const id of [a, b, c]) await receiver.waitFor(finished(id));

      const missEvents = receiver.eventsOf(tracesOf(receiver, a)[0]);
      expect(observation(missEvents, 'span', 'response-cache').output).toMatchObject({ hit: false });
      expect(observation(missEvents, 'generation', 'engine').usageDetails.output).toBe(
        miss.body.assistantMessage.usage.completionTokens,
      );

      for (const [id, res, type] of [
        [b, exact, 'exact'],
        [c, semantic, 'semantic'],
      ] as const) {
        const traceId = tracesOf(receiver, id)[0];
        const events = receiver.eventsOf(traceId);
        const span = observation(events, 'span', 'response-cache');
        expect(span.output).toMatchObject({
          hit: true,
          type,
          similarity: res.body.assistantMessage.cache.response.similarity,
        });
        expect(span.endTime).toBeDefined();
        expect(events.filter((e) => e.type.startsWith('generation'))).toHaveLength(0);
        expect(traceBody(events, traceId)).toMatchObject({
          output: res.body.assistantMessage.content,
          tags: expect.arrayContaining([type]),
          metadata: expect.objectContaining({
            source: type,
            responseCache: expect.objectContaining({ hit: true, type }),
          }),
        });
      }
      expect(semantic.body.assistantMessage.cache.response.similarity).toBeLessThan(1);
    });

    it('should end a failed turn with the error code and an ERROR generation', async () => {
      const id = await newConversation(app);
      sim.engine.setFaults({ errorRate: 1, errorStatus: 500 });
      const res = await turn(app, id, 'The engine will fail this one').finally(() =>
        sim.engine.setFaults({ errorRate: 0 }),
      );
      expect(res.status).toBe(502);
      await app.running.app.get(TracingService).flush();
      await receiver.waitFor(
        () =>
          tracesOf(receiver, id).length === 1 &&
          receiver.eventsOf(tracesOf(receiver, id)[0]).some((e) => e.body.tags?.includes('error')),
      );
      const traceId = tracesOf(receiver, id)[0];
      const trace = traceBody(receiver.eventsOf(traceId), traceId);
      expect(trace.metadata.error.code).toBe(res.body.code);
      const generation = observation(receiver.eventsOf(traceId), 'generation', 'engine');
      expect(generation.level).toBe('ERROR');
    });
  });

  describe('with LANGFUSE_MASK_CONTENT', () => {
    let receiver: LangfuseReceiver;
    let app: BenchInstance;

    beforeAll(async () => {
      receiver = await startLangfuseReceiver();
      app = await bootApp({
        ...KEYS,
        LANGFUSE_BASEURL: receiver.url,
        LANGFUSE_FLUSH_INTERVAL_MS: '20',
        LANGFUSE_MASK_CONTENT: 'true',
      });
    });

    afterAll(async () => {
      await app?.close();
      await receiver?.close();
    });

    it('should send no message content but keep usage and metadata', async () => {
      const question = 'My secret plan is to cache everything';
      const id = await newConversation(app);
      const res = await turn(app, id, question);
      expect(res.status).toBe(201);
      await app.running.app.get(TracingService).flush();
      await receiver.waitFor(() =>
        receiver.events.some((e) => e.type === 'generation-update' && e.body.usageDetails),
      );
      await receiver.waitFor(() =>
        receiver.events.some((e) => e.type === 'trace-create' && e.body.output !== undefined),
      );
      const sent = JSON.stringify(receiver.events);
      expect(sent).not.toContain('secret plan');
      expect(sent).not.toContain(res.body.assistantMessage.content);
      const traceId = tracesOf(receiver, id)[0];
      expect(traceBody(receiver.eventsOf(traceId), traceId).input).toBe(`[masked: ${question.length} chars]`);
      const generation = observation(receiver.eventsOf(traceId), 'generation', 'engine');
      expect(generation.usageDetails.output).toBe(res.body.assistantMessage.usage.completionTokens);
      expect(generation.metadata.replica).toBe(res.body.assistantMessage.replica);
    });
  });

  describe('when Langfuse is down', () => {
    it('should answer turns when the Langfuse host refuses connections, counting the failed events', async () => {
      const port = await deadPort();
      const app = await bootApp({
        ...KEYS,
        LANGFUSE_BASEURL: `http://127.0.0.1:${port}`,
        LANGFUSE_FLUSH_AT: '1',
        LANGFUSE_RETRY_COUNT: '0',
        LANGFUSE_SHUTDOWN_TIMEOUT_MS: '500',
      });
      try {
        const id = await newConversation(app);
        const res = await turn(app, id, 'Is anyone tracing this?');
        expect(res.status).toBe(201);
        expect(res.body.assistantMessage.content.length).toBeGreaterThan(0);
        const stream = await streamedTurn(app, id, 'And this one?');
        expect(stream.events.at(-1)?.event).toBe('turn');
        await app.running.app.get(TracingService).flush();
        const deadline = Date.now() + 10_000;
        let failed = 0;
        while (Date.now() < deadline) {
          failed = metricSum(await scrape(app), 'kvchat_langfuse_events_total', { outcome: 'failed' });
          if (failed > 0) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(failed).toBeGreaterThan(0);
        expect(metricSum(await scrape(app), 'kvchat_langfuse_events_total', { outcome: 'sent' })).toBe(0);
      } finally {
        await app.close();
      }
    });

    it('should answer turns when Langfuse hangs, dropping events past the queue bound and shutting down in bounded time', async () => {
      const receiver = await startLangfuseReceiver({ respond: 'hang' });
      const app = await bootApp({
        ...KEYS,
        LANGFUSE_BASEURL: receiver.url,
        LANGFUSE_FLUSH_AT: '1',
        LANGFUSE_RETRY_COUNT: '0',
        LANGFUSE_REQUEST_TIMEOUT_MS: '60000',
        LANGFUSE_MAX_QUEUE_EVENTS: '4',
        LANGFUSE_SHUTDOWN_TIMEOUT_MS: '300',
      });
      let closed = false;
      try {
        const id = await newConversation(app);
        for (const content of ['first question', 'second question', 'third question']) {
          const res = await turn(app, id, content);
          expect(res.status).toBe(201);
        }
        const samples = await scrape(app);
        expect(metricSum(samples, 'kvchat_langfuse_events_total', { outcome: 'dropped' })).toBeGreaterThan(0);
        expect(metricSum(samples, 'kvchat_langfuse_queue_events')).toBeLessThanOrEqual(4 + 1);
        const started = Date.now();
        await app.close();
        closed = true;
        // Shutdown waited for Langfuse at most LANGFUSE_SHUTDOWN_TIMEOUT_MS (plus the app's own shutdown).
        expect(Date.now() - started).toBeLessThan(5000);
      } finally {
        if (!closed) await app.close();
        await receiver.close();
      }
    });
  });
});
