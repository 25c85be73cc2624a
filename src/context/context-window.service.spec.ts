import { FAKE_TEMPLATE } from '../../test/fakes/fake-engine-adapter';
import { FakePrefixReuse } from '../../test/fakes/fake-prefix-reuse';
import { fakeSummaries } from '../../test/fakes/fake-summaries';
import { messagesDigest } from '../common/message-digest';
import { ContextConfig } from '../config/context.config';
import { InferenceConfig } from '../config/inference.config';
import { fakeEngineTokenizer } from '../../test/factories/inference';
import type { ChatResult } from '../inference/inference.types';
import { ContextLengthExceeded } from './context.errors';
import type { ContextPolicy, ConversationContextState } from './context-policy';
import { ContextWindowService, type WindowRequest } from './context-window.service';
import { CompactPolicy } from './policies/compact.policy';
import { SummaryPolicy } from './policies/summary.policy';
import type { PrefixReuseService } from './prefix-reuse.service';
import { PromptAssembler } from './prompt-assembler';
import { PromptChainService } from './prompt-chain.service';
import type { HistoryMessage } from './prompt.types';

const RESERVED = 100;

/**
 * The real ContextWindowService, PromptAssembler and TokenizerService over the real InferenceService
 * with a FakeEngineAdapter (one token per character, a 3-token-per-message template): counts are exact.
 */
function build(options: { window?: number; policy?: (config: ContextConfig) => ContextPolicy } = {}) {
  const contextConfig = Object.assign(new ContextConfig(), {
    CONTEXT_LOW_WATER: 0.6,
    CONTEXT_SUMMARY_TRIGGER: 0.8,
    CONTEXT_SUMMARY_MAX_TOKENS: 64,
    PROMPT_DATE_IN_TAIL: false,
  });
  const inferenceConfig = Object.assign(new InferenceConfig(), {
    INFERENCE_MAX_CONTEXT_TOKENS: options.window ?? 4000,
    INFERENCE_MODEL: 'fake-model',
  });
  const { tokenizer, engine } = fakeEngineTokenizer(inferenceConfig, contextConfig);
  const prefixReuse = new FakePrefixReuse();
  const policy = (options.policy ?? ((c) => new CompactPolicy(c)))(contextConfig);
  const sut = new ContextWindowService(
    policy,
    new PromptAssembler(contextConfig),
    tokenizer,
    prefixReuse as unknown as PrefixReuseService,
    inferenceConfig,
    new PromptChainService(tokenizer, inferenceConfig, contextConfig),
  );
  return { sut, engine, prefixReuse, tokenizer };
}

/** `turns` complete turns of 100-character messages, sequences 1..2×turns; token counts stored when `counted`. */
function history(turns: number, counted = true): HistoryMessage[] {
  const out: HistoryMessage[] = [];
  for (let t = 1; t <= turns; t++) {
    const user = `question ${t} `.padEnd(100, 'q');
    const assistant = `answer ${t} `.padEnd(100, 'a');
    out.push({ role: 'user', content: user, sequence: 2 * t - 1, ...(counted ? { tokenCount: 100 } : {}) });
    out.push({
      role: 'assistant',
      content: assistant,
      sequence: 2 * t,
      ...(counted ? { tokenCount: 100 } : {}),
    });
  }
  return out;
}

const request = (overrides: Partial<WindowRequest> = {}): WindowRequest => ({
  tenantId: 'tenant-1',
  conversationId: 'conversation-1',
  state: null,
  spec: {
    stablePrefix: 'You are kvchat.',
    templateVersion: 'test@1',
    history: history(3),
    userMessage: 'What next?',
  },
  reservedOutputTokens: RESERVED,
  render: { now: new Date('2026-05-01T12:00:00Z') },
  ...overrides,
});

/** Tokens of a prompt with the fake template: contents, framing per message, the generation prompt. */
const promptTokens = (messages: { content: string }[]): number =>
  messages.reduce((sum, m) => sum + m.content.length + FAKE_TEMPLATE.perMessage, 0) +
  FAKE_TEMPLATE.generationPrompt;

const result = (overrides: Partial<ChatResult> = {}): ChatResult => ({
  content: 'Twelve chars',
  finishReason: 'stop',
  model: 'fake-model',
  usage: { promptTokens: 200, completionTokens: 3, cachedTokens: 150 },
  replica: 'http://r0:8000/v1',
  timings: { ttftMs: 10, totalMs: 20, itlMs: 1 },
  ...overrides,
});

describe('ContextWindowService (fake engine tokenizer)', () => {
  describe('a prompt that fits', () => {
    it('should send the whole history, count the prompt exactly and leave the window where it was', async () => {
      const { sut } = build();

      const prepared = await sut.prepare(request());

      expect(prepared.messages.map((m) => m.role)).toEqual([
        'system',
        'user',
        'assistant',
        'user',
        'assistant',
        'user',
        'assistant',
        'user',
      ]);
      expect(prepared.messages.at(-1)?.content).toBe('What next?');
      expect(prepared.userContent).toBe('What next?');
      expect(prepared.userTokenCount).toBe('What next?'.length);
      expect(prepared.promptFingerprint).toHaveLength(promptTokens(prepared.messages));
      expect(prepared.window).toEqual({
        policy: 'compact',
        budget: 4000 - RESERVED,
        estimatedPromptTokens: promptTokens(prepared.messages),
        droppedThroughSequence: 0,
        compacted: false,
        compactions: 0,
      });
      expect(prepared.state).toEqual({ droppedThroughSequence: 0, compactions: 0 });
    });

    it('should count only the history messages without a stored count, and return those counts to persist', async () => {
      const { sut } = build();
      const mixed = history(2);
      delete mixed[1].tokenCount;
      mixed[3].tokenCount = null;

      const prepared = await sut.prepare(request({ spec: { ...request().spec, history: mixed } }));

      expect(prepared.historyTokenCounts).toEqual({ 2: 100, 4: 100 });
    });

    it("should report the backend's prefix reuse against the conversation's previous prompt", async () => {
      const { sut, prefixReuse } = build();
      const first = await sut.prepare(request());
      const spec = {
        ...request().spec,
        history: [
          ...history(3),
          { role: 'user' as const, content: first.userContent, sequence: 7, tokenCount: 10 },
          { role: 'assistant' as const, content: 'Fine.', sequence: 8, tokenCount: 5 },
        ],
        userMessage: 'And then?',
      };

      const second = await sut.prepare(request({ spec, state: first.state }));

      expect(first.backendReusableTokens).toBe(0);
      // Everything up to the previous user message repeats (whole blocks of 16 tokens, the default
      // INFERENCE_BLOCK_SIZE); the previous generation prompt does not.
      expect(second.backendReusableTokens).toBe(
        Math.floor((first.promptFingerprint.length - FAKE_TEMPLATE.generationPrompt) / 16) * 16,
      );
      expect(second.backendReusableTokens).toBeGreaterThan(0);
      // The response cache's context: every message before the new one, as a running digest.
      expect(second.historyDigest).toBe(messagesDigest(second.messages.slice(0, -1)));
      expect(prefixReuse.calls).toEqual([
        { conversationId: 'conversation-1', promptTokens: first.promptFingerprint.length },
        { conversationId: 'conversation-1', promptTokens: second.promptFingerprint.length },
      ]);
    });
  });

  describe('compaction', () => {
    it('should drop whole old turns down to the low-water mark once the history no longer fits', async () => {
      // Budget 1000 - 100 = 900 tokens; ten turns of 2 × 103 tokens do not fit.
      const { sut } = build({ window: 1000 });

      const prepared = await sut.prepare(request({ spec: { ...request().spec, history: history(10) } }));

      expect(prepared.window.compacted).toBe(true);
      expect(prepared.window.compactions).toBe(1);
      expect(prepared.window.estimatedPromptTokens).toBeLessThanOrEqual(Math.floor(900 * 0.6));
      expect(prepared.state.droppedThroughSequence % 2).toBe(0);
      expect(prepared.messages[1]).toEqual({
        role: 'user',
        content: `question ${prepared.state.droppedThroughSequence / 2 + 1} `.padEnd(100, 'q'),
      });
    });

    it('should keep the window (and the prefix) on the next turns until it fills again', async () => {
      const { sut } = build({ window: 1000 });
      const compacted = await sut.prepare(request({ spec: { ...request().spec, history: history(10) } }));
      const state: ConversationContextState = compacted.state;

      const next = await sut.prepare(request({ state, spec: { ...request().spec, history: history(11) } }));

      expect(next.window.compacted).toBe(false);
      expect(next.state).toEqual(state);
      expect(next.messages.slice(0, compacted.messages.length - 1)).toEqual(compacted.messages.slice(0, -1));
    });

    it('should put the rolling summary right after the stable prefix with the summary policy', async () => {
      const summaries = fakeSummaries(true);
      const { sut } = build({ window: 1000, policy: (c) => new SummaryPolicy(c, summaries) });

      const prepared = await sut.prepare(request({ spec: { ...request().spec, history: history(10) } }));

      expect(prepared.window.compacted).toBe(true);
      expect(prepared.window.summaryThroughSequence).toBe(prepared.state.droppedThroughSequence);
      expect(prepared.messages[1].role).toBe('system');
      expect(prepared.messages[1].content).toContain(
        `Summary of messages 1-${prepared.state.droppedThroughSequence}`,
      );
      expect(prepared.window.estimatedPromptTokens).toBeLessThanOrEqual(900);
      expect(summaries.requested.length).toBeGreaterThan(0);
    });

    it('should drop turns as compact does when no summary arrives in time', async () => {
      const { sut } = build({ window: 1000, policy: (c) => new SummaryPolicy(c, fakeSummaries(false)) });

      const prepared = await sut.prepare(request({ spec: { ...request().spec, history: history(10) } }));

      expect(prepared.window.compacted).toBe(true);
      expect(prepared.window.summaryThroughSequence).toBeUndefined();
      expect(prepared.messages[1].role).toBe('user');
      expect(prepared.window.estimatedPromptTokens).toBeLessThanOrEqual(Math.floor(900 * 0.6));
    });

    it('should refuse a message that cannot fit even without history, naming maxTokens and the window', async () => {
      const { sut } = build({ window: 1000 });
      const huge = { ...request().spec, history: [], userMessage: 'x'.repeat(950) };

      const error = await sut.prepare(request({ spec: huge })).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(ContextLengthExceeded);
      expect((error as ContextLengthExceeded).extensions).toMatchObject({
        field: 'maxTokens',
        maxTokens: RESERVED,
        window: 1000,
      });
      expect((error as Error).message).toMatch(/lower maxTokens or shorten the message/);
    });
  });

  describe('local tokenizer fallback', () => {
    it('should count with the local tokenizer when the engine has no /tokenize', async () => {
      const { sut, engine, tokenizer } = build();
      engine.tokenizeSupported = false;
      // History stored before token counts were kept: the local tokenizer counts it too.
      const spec = { ...request().spec, history: history(3, false) };

      const prepared = await sut.prepare(request({ spec }));

      expect(tokenizer.source).toBe('local');
      expect(prepared.window.estimatedPromptTokens).toBe(prepared.promptFingerprint.length);
      expect(prepared.window.estimatedPromptTokens).toBeLessThan(promptTokens(prepared.messages));
    });
  });

  describe('the turn report', () => {
    it("should put the engine's cached tokens next to the backend's reusable tokens, with the router's choice", async () => {
      const { sut } = build();
      const prepared = { ...(await sut.prepare(request())), backendReusableTokens: 120 };
      const routing = { policy: 'prefix', reason: 'prefix', attempts: 1, matchedTokens: 96 };

      const report = await sut.report(prepared, result({ routing }));

      expect(report.answerTokenCount).toBe('Twelve chars'.length);
      expect(report.cache).toEqual({
        cachedTokens: 150,
        prefixReuse: 0.75,
        promptTokens: 200,
        backendReusableTokens: 120,
        backendPrefixReuse: 0.6,
        window: prepared.window,
        router: routing,
      });
    });

    it('should report zero reuse for an answer without prompt tokens (a cache hit) and no router', async () => {
      const { sut } = build();
      const prepared = await sut.prepare(request());

      const report = await sut.report(
        prepared,
        result({ usage: { promptTokens: 0, completionTokens: 0, cachedTokens: 0 } }),
      );

      expect(report.cache.prefixReuse).toBe(0);
      expect(report.cache.backendPrefixReuse).toBe(0);
      expect(report.cache).not.toHaveProperty('router');
    });

    it('should leave the answer token count out when counting it fails, without failing the turn', async () => {
      const { sut, engine } = build();
      const prepared = await sut.prepare(request());
      engine.takeDown('http://r0:8000/v1');

      const report = await sut.report(prepared, result({ content: 'never tokenized before' }));

      expect(report.answerTokenCount).toBeUndefined();
      expect(report.cache.promptTokens).toBe(200);
    });
  });
});
