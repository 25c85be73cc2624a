import { answerScript, FakeEngineAdapter } from '../../test/fakes/fake-engine-adapter';
import { InferenceConfig } from '../config/inference.config';
import { EndpointRouter } from './endpoint-router';
import {
  EngineBadRequest,
  EngineError,
  EngineStreamCut,
  EngineTimeout,
  EngineTokenizeUnsupported,
  EngineUnavailable,
  RequestAborted,
} from './inference.errors';
import { inferenceService } from '../../test/factories/inference';
import type { ChatRequest } from './inference.types';

const URLS = ['http://r0:8000/v1', 'http://r1:8000/v1', 'http://r2:8000/v1'];

function build(overrides: Partial<InferenceConfig> = {}) {
  const engine = new FakeEngineAdapter();
  const config = Object.assign(new InferenceConfig(), { ROUTER_POLICY: 'session' }, overrides);
  const router = new EndpointRouter(
    { baseURLs: URLS, simulated: true, close: () => Promise.resolve() },
    config,
    engine,
  );
  const sut = inferenceService(router, config, engine);
  return { sut, engine, router, config };
}

const request = (overrides: Partial<ChatRequest> = {}): ChatRequest => ({
  messages: [{ role: 'user', content: 'Hello?' }],
  routingKey: 'conversation-1',
  ...overrides,
});

/** A promise the test settles when it chooses (an explicit gate instead of a sleep). */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe('InferenceService (fake engine adapter)', () => {
  afterEach(() => jest.restoreAllMocks());

  describe('replica choice', () => {
    it('should send a conversation to the replica the router picks for it, turn after turn', async () => {
      const { sut, engine, router } = build();
      const home = router.pick({ routingKey: 'conversation-1' }).id;

      const results = [await sut.chat(request()), await sut.chat(request())];

      expect(engine.chats.map((c) => c.endpoint)).toEqual([home, home]);
      expect(results[0]).toMatchObject({
        replica: home,
        routing: { policy: 'session', reason: 'session', attempts: 1 },
      });
    });

    it('should send the discovered model, the default token budget, sampling, the tenant salt and the conversation as prompt cache key', async () => {
      const { sut, engine } = build({ INFERENCE_DEFAULT_MAX_TOKENS: 77 });

      await sut.chat(request({ cacheSalt: 'salt-1', temperature: 0.2, sampling: { seed: 7 } }));

      expect(engine.chats[0].request).toEqual({
        model: 'fake-model',
        messages: [{ role: 'user', content: 'Hello?' }],
        maxTokens: 77,
        temperature: 0.2,
        sampling: { seed: 7 },
        cacheSalt: 'salt-1',
        promptCacheKey: 'conversation-1',
      });
    });

    it('should use INFERENCE_MODEL without asking the engine, and fail clearly when no model is listed', async () => {
      const pinned = build({ INFERENCE_MODEL: 'pinned-model' });
      pinned.engine.modelIds = [];
      const listed = build();
      listed.engine.modelIds = [];

      await expect(pinned.sut.modelName()).resolves.toBe('pinned-model');
      await expect(listed.sut.modelName()).rejects.toThrow(EngineError);
      await expect(listed.sut.modelName()).rejects.toThrow(/lists no model; set INFERENCE_MODEL/);
    });

    it('should discover the model on another replica when the first it asks is unreachable', async () => {
      const { sut, engine, router } = build();
      const first = router.pickAny();
      engine.takeDown(first.id);

      await expect(sut.modelName()).resolves.toBe('fake-model');
      expect(first.healthy).toBe(true);
    });
  });

  describe('failover', () => {
    it('should move to another replica when its replica is unreachable, and mark that one unhealthy', async () => {
      const { sut, engine, router } = build();
      const home = router.pick({ routingKey: 'conversation-1' });
      engine.takeDown(home.id);

      const result = await sut.chat(request());

      expect(result.replica).not.toBe(home.id);
      expect(result.routing?.attempts).toBe(2);
      expect(result.content).toBe('Hello from the fake engine.');
      expect(home.healthy).toBe(false);
    });

    it('should retry an overloaded replica (503) elsewhere without marking it unhealthy', async () => {
      const { sut, engine, router } = build();
      const home = router.pick({ routingKey: 'conversation-1' });
      engine.script(home.id, { reject: new EngineUnavailable('overloaded (503)') });

      const result = await sut.chat(request());

      expect(result.replica).not.toBe(home.id);
      expect(home.healthy).toBe(true);
    });

    it('should give up after 1 + ROUTER_RETRIES replicas with the last engine error', async () => {
      const { sut, engine } = build({ ROUTER_RETRIES: 1, INFERENCE_MODEL: 'pinned-model' });
      URLS.forEach((url) => engine.takeDown(url));

      await expect(sut.chat(request())).rejects.toThrow(EngineUnavailable);
      expect(engine.chats).toHaveLength(2);
    });

    it('should not retry once tokens have reached the caller, nor a request the engine rejects', async () => {
      const cut = build();
      cut.engine.setDefault({
        steps: [{ delta: 'Hal' }, { fail: new EngineStreamCut('connection broke after 1 tokens') }],
      });
      const rejected = build();
      rejected.engine.setDefault({ reject: new EngineBadRequest('prompt too long') });
      const received: string[] = [];

      await expect(cut.sut.chat(request({ onToken: (d) => received.push(d) }))).rejects.toThrow(
        EngineStreamCut,
      );
      await expect(rejected.sut.chat(request())).rejects.toThrow(EngineBadRequest);
      expect(received).toEqual(['Hal']);
      expect(cut.engine.chats).toHaveLength(1);
      expect(rejected.engine.chats).toHaveLength(1);
    });

    it('should call a stream that ends without a finish reason cut', async () => {
      const { sut, engine } = build();
      engine.setDefault({ steps: [{ delta: 'Half an ans' }] });

      await expect(sut.chat(request())).rejects.toThrow(EngineStreamCut);
    });
  });

  describe('abort and timeouts', () => {
    it('should abort the engine stream when the caller aborts, and not retry', async () => {
      const { sut, engine, router } = build();
      const held = gate();
      engine.setDefault({
        steps: [{ delta: 'Hel' }, { wait: held.promise }, { delta: 'lo' }, { finish: 'stop' }],
      });
      const controller = new AbortController();

      const chat = sut.chat(request({ signal: controller.signal, onToken: () => controller.abort() }));

      await expect(chat).rejects.toThrow(RequestAborted);
      expect(engine.chats).toHaveLength(1);
      expect(router.replicas.map((r) => r.inFlight)).toEqual([0, 0, 0]);
      expect(router.replicas.every((r) => r.healthy)).toBe(true);
    });

    it('should give up with EngineTimeout when no first token comes within INFERENCE_FIRST_TOKEN_TIMEOUT_MS', async () => {
      const { sut, engine } = build({ INFERENCE_FIRST_TOKEN_TIMEOUT_MS: 100 });
      engine.setDefault({ steps: [{ wait: gate().promise }] });

      await expect(sut.chat(request())).rejects.toThrow(EngineTimeout);
      await expect(sut.chat(request())).rejects.toThrow(/No first token .* within 100 ms/);
    });
  });

  describe('whole answers (a caller that does not stream)', () => {
    it('should ask for one whole answer, hand it over at once, and report TTFT as the time to it', async () => {
      const { sut, engine } = build();
      jest.spyOn(performance, 'now').mockImplementation(() => engine.now);
      engine.setDefault({
        engineTimings: { engineTtftMs: 90 },
        steps: [
          { advanceMs: 120 },
          { delta: 'Hel' },
          { advanceMs: 10 },
          { delta: 'lo!' },
          { finish: 'stop' },
          { usage: { promptTokens: 50, completionTokens: 2, cachedTokens: 32 } },
        ],
      });
      const received: string[] = [];

      const result = await sut.chat(request({ wholeAnswer: true, onToken: (d) => received.push(d) }));

      expect(engine.wholeAnswers).toHaveLength(1);
      expect(received).toEqual(['Hello!']);
      expect(result).toMatchObject({
        content: 'Hello!',
        finishReason: 'stop',
        wholeAnswer: true,
        usage: { promptTokens: 50, completionTokens: 2, cachedTokens: 32 },
        timings: { ttftMs: 130, totalMs: 130, itlMs: 0, engineTtftMs: 90 },
      });
    });

    it('should stream from an adapter without whole answers, and stream when the caller reads the stream', async () => {
      const { sut, engine } = build();
      const streamed = await sut.chat(request());
      (engine as { chatAnswer?: unknown }).chatAnswer = undefined;
      const fallback = await sut.chat(request({ wholeAnswer: true }));

      expect(engine.wholeAnswers).toEqual([]);
      expect(engine.chats).toHaveLength(2);
      expect(streamed.wholeAnswer).toBeUndefined();
      expect(fallback).toMatchObject({ content: 'Hello from the fake engine.' });
      expect(fallback.wholeAnswer).toBeUndefined();
    });

    it('should bound the whole answer by the whole request’s deadline, then fail over to another replica', async () => {
      // A first-token deadline shorter than the whole request's does not cut a whole answer.
      const { sut, engine, router } = build({
        INFERENCE_FIRST_TOKEN_TIMEOUT_MS: 100,
        INFERENCE_TIMEOUT_MS: 300,
      });
      // The first token of a stream would come in time; the whole answer does not.
      engine.setDefault({ steps: [{ delta: 'Hel' }, { wait: gate().promise }] });

      await expect(sut.chat(request({ wholeAnswer: true }))).rejects.toThrow(
        /No whole answer from .* within 300 ms/,
      );
      expect(engine.wholeAnswers).toHaveLength(1);

      const home = router.pick({ routingKey: 'conversation-1' });
      engine.script(home.id, { reject: new EngineUnavailable('overloaded (503)') });
      engine.setDefault(answerScript('Answered elsewhere.'));
      const result = await sut.chat(request({ wholeAnswer: true }));
      expect(result).toMatchObject({ content: 'Answered elsewhere.', wholeAnswer: true });
      expect(result.replica).not.toBe(home.id);
    });
  });

  describe('TTFT and usage', () => {
    it('should measure TTFT at the first delta and ITL over the stream, and read the engine usage', async () => {
      const { sut, engine } = build();
      jest.spyOn(performance, 'now').mockImplementation(() => engine.now);
      engine.setDefault({
        engineTimings: { engineTtftMs: 90, engineModelPrefillMs: 80 },
        steps: [
          { advanceMs: 120 },
          { delta: 'Hel' },
          { advanceMs: 10 },
          { delta: 'lo' },
          { advanceMs: 20 },
          { delta: '!' },
          { finish: 'stop' },
          { usage: { promptTokens: 50, completionTokens: 3, cachedTokens: 32 } },
          { advanceMs: 5 },
        ],
      });
      const received: string[] = [];

      const result = await sut.chat(request({ onToken: (d) => received.push(d) }));

      expect(received).toEqual(['Hel', 'lo', '!']);
      expect(result).toMatchObject({
        content: 'Hello!',
        finishReason: 'stop',
        model: 'fake-model',
        usage: { promptTokens: 50, completionTokens: 3, cachedTokens: 32 },
        timings: { ttftMs: 120, itlMs: 15, totalMs: 155, engineTtftMs: 90, engineModelPrefillMs: 80 },
      });
    });

    it('should count the deltas as completion tokens and report no cached tokens when the engine sends no usage', async () => {
      const { sut, engine } = build();
      engine.setDefault({ steps: [{ delta: 'One ' }, { delta: 'two' }, { finish: 'length' }] });

      const result = await sut.chat(request());

      expect(result.finishReason).toBe('length');
      expect(result.usage).toEqual({ promptTokens: 0, completionTokens: 2, cachedTokens: 0 });
      expect(result.timings.engineTtftMs).toBeUndefined();
    });

    it('should take a partial usage report as given (no cached-token field = 0)', async () => {
      const { sut, engine } = build();
      engine.setDefault(answerScript('Fine.', { promptTokens: 12, completionTokens: 1 }));

      const result = await sut.chat(request());

      expect(result.usage).toEqual({ promptTokens: 12, completionTokens: 1, cachedTokens: 0 });
    });
  });

  describe('tokenize', () => {
    it("should return the engine's token ids for text and for chat messages", async () => {
      const { sut, engine } = build();

      const ids = await sut.tokenize({ prompt: 'hi' });
      await sut.tokenize({ messages: [{ role: 'user', content: 'hi' }] });

      expect(ids).toEqual([104, 105]);
      expect(engine.tokenizeCalls.map((c) => c.model)).toEqual(['fake-model', 'fake-model']);
    });

    it('should say tokenize is unsupported without asking other replicas', async () => {
      const { sut, engine } = build();
      engine.tokenizeSupported = false;

      await expect(sut.tokenize({ prompt: 'hi' })).rejects.toThrow(EngineTokenizeUnsupported);
      expect(engine.tokenizeCalls).toHaveLength(1);
    });

    it('should ask another replica when one is unreachable, without marking it unhealthy', async () => {
      const { sut, engine, router } = build();
      const first = router.pickAny();
      engine.takeDown(first.id);

      const ids = await sut.tokenize({ prompt: 'ok' });

      expect(ids).toEqual([111, 107]);
      expect(engine.tokenizeCalls.map((c) => c.endpoint)).toEqual([
        first.id,
        expect.not.stringMatching(first.id),
      ]);
      expect(first.healthy).toBe(true);
    });
  });
});
