import {
  memoryPrefixReuse,
  memoryResponseCache,
  recordingSink,
  scriptedEngine,
  wordTokenizer,
} from '../../test/factories/turn';
import type { ResponseCache } from '../caching/response-cache.service';
import { ContextConfig } from '../config/context.config';
import { InferenceConfig } from '../config/inference.config';
import { ContextWindowService } from '../context/context-window.service';
import { CompactPolicy } from '../context/policies/compact.policy';
import type { PrefixReuseService } from '../context/prefix-reuse.service';
import { PromptChainService } from '../context/prompt-chain.service';
import { PromptAssembler } from '../context/prompt-assembler';
import type { HistoryMessage, PromptSpec } from '../context/prompt.types';
import type { TokenizerService } from '../context/tokenizer.service';
import { blockHashChain } from '../inference/block-hash';
import { EngineUnavailable, RequestAborted } from '../inference/inference.errors';
import type { InferenceService } from '../inference/inference.service';
import type { RouteDecision, TurnInput } from './agents.types';
import { AnswerService } from './answer.service';

const ROUTE: RouteDecision = { agent: 'assistant', score: 1, classifier: 'pinned' };

/** `n` alternating user/assistant messages of `wordsEach` words, sequences 1..n. */
const history = (n: number, wordsEach = 10): HistoryMessage[] =>
  Array.from({ length: n }, (_, i) => ({
    role: i % 2 === 0 ? 'user' : 'assistant',
    content: Array.from({ length: wordsEach }, (__, w) => `m${i + 1}w${w}`).join(' '),
    sequence: i + 1,
    tokenCount: wordsEach,
  }));

const spec = (userMessage: string, messages: HistoryMessage[] = []): PromptSpec => ({
  stablePrefix: 'You are kvchat, a helpful assistant.',
  templateVersion: 'global@1+assistant@1',
  history: messages,
  userMessage,
});

const input = (overrides: Partial<TurnInput> = {}): TurnInput => ({
  tenantId: 'tenant-1',
  conversationId: 'conv-1',
  pinnedAgent: 'assistant',
  history: [],
  userMessage: 'What is a KV cache?',
  cacheSalt: 'salt-1',
  maxTokens: 64,
  ...overrides,
});

describe('AnswerService', () => {
  const build = (contextTokens = 32_768) => {
    const inferenceConfig = Object.assign(new InferenceConfig(), {
      INFERENCE_MAX_CONTEXT_TOKENS: contextTokens,
      INFERENCE_BLOCK_SIZE: 16,
    });
    const contextConfig = new ContextConfig();
    const tokenizer = wordTokenizer();
    const prefixReuse = memoryPrefixReuse(16);
    const engine = scriptedEngine();
    const cache = memoryResponseCache();
    const contextWindow = new ContextWindowService(
      new CompactPolicy(contextConfig),
      new PromptAssembler(contextConfig),
      tokenizer as unknown as TokenizerService,
      prefixReuse as unknown as PrefixReuseService,
      inferenceConfig,
      new PromptChainService(tokenizer as unknown as TokenizerService, inferenceConfig, contextConfig),
    );
    const sut = new AnswerService(
      contextWindow,
      engine as unknown as InferenceService,
      inferenceConfig,
      cache as unknown as ResponseCache,
    );
    return { sut, engine, cache, tokenizer, prefixReuse };
  };

  it('should report the miss, stream the engine deltas, then the usage, and store the answer', async () => {
    const { sut, engine, cache } = build();
    const { sink, events } = recordingSink();
    const output = await sut.answer(
      { input: input(), route: ROUTE, prompt: spec('What is a KV cache?') },
      sink,
    );

    expect(engine.requests).toHaveLength(1);
    expect(events[0]).toEqual({ type: 'cache', cache: { hit: false } });
    const deltas = events.filter((e) => e.type === 'token').map((e) => e.delta);
    expect(deltas.join('')).toBe(output.content);
    expect(events.at(-1)).toEqual({ type: 'usage', usage: output.usage });
    expect(output.cache.response).toEqual({ hit: false });
    expect(output.route).toEqual(ROUTE);
    expect(cache.entries.size).toBe(1);
  });

  it('should hash the prompt once, salted, and give that chain to prefix accounting and the engine', async () => {
    const { sut, engine, prefixReuse } = build();
    await sut.answer(
      { input: input(), route: ROUTE, prompt: spec('What is a KV cache?', history(4)) },
      recordingSink().sink,
    );
    const request = engine.requests[0];
    const expected = blockHashChain(request.promptTokenIds ?? [], 16, 'salt-1');
    expect(expected.length).toBeGreaterThan(0);
    expect(request.promptBlockHashes).toEqual(expected);
    expect(prefixReuse.chains.get('conv-1')?.hashes).toBe(request.promptBlockHashes);
  });

  it('should answer a repeated question from the cache without the engine, replaying it as tokens', async () => {
    const { sut, engine } = build();
    const first = await sut.answer(
      { input: input(), route: ROUTE, prompt: spec('What is a KV cache?') },
      recordingSink().sink,
    );
    const { sink, events } = recordingSink();
    const again = await sut.answer(
      { input: input({ conversationId: 'conv-2' }), route: ROUTE, prompt: spec('What is a KV cache?') },
      sink,
    );

    expect(engine.requests).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'cache', cache: { hit: true, type: 'exact' } });
    expect(
      events
        .filter((e) => e.type === 'token')
        .map((e) => e.delta)
        .join(''),
    ).toBe(first.content);
    expect(events.at(-1)).toEqual({
      type: 'usage',
      usage: { promptTokens: 0, completionTokens: 0, cachedTokens: 0 },
    });
    expect(again).toMatchObject({ content: first.content, replica: 'response-cache' });
    expect(again.cache.response).toMatchObject({ hit: true, type: 'exact' });
  });

  it('should let the engine answer a question the cache guard rejected, and name the guard', async () => {
    const { sut, engine, cache } = build();
    cache.rejectedBy.set('Is a KV cache not useful?', 'negation');
    const { sink, events } = recordingSink();
    const output = await sut.answer(
      { input: input(), route: ROUTE, prompt: spec('Is a KV cache not useful?') },
      sink,
    );
    expect(engine.requests).toHaveLength(1);
    expect(events[0]).toEqual({ type: 'cache', cache: { hit: false, guard: 'negation' } });
    expect(output.cache.response).toEqual({ hit: false, guard: 'negation' });
  });

  it('should hand the routing embedding of the message to the cache lookup', async () => {
    const { sut, cache } = build();
    await sut.answer(
      { input: input(), route: ROUTE, prompt: spec('What is a KV cache?'), messageEmbedding: [0.6, 0.8] },
      recordingSink().sink,
    );
    expect(cache.requests[0].embedding).toEqual([0.6, 0.8]);
  });

  it('should compact the window when the history no longer fits, and send only what is left', async () => {
    const { sut, engine } = build(400);
    const output = await sut.answer(
      {
        input: input({ context: { droppedThroughSequence: 0, compactions: 0 } }),
        route: ROUTE,
        prompt: spec('And now?', history(40)),
      },
      recordingSink().sink,
    );
    expect(output.context?.compactions).toBe(1);
    const dropped = output.context?.droppedThroughSequence ?? 0;
    expect(dropped).toBeGreaterThan(0);
    expect(output.cache.window).toMatchObject({ compacted: true, droppedThroughSequence: dropped });
    const sent = engine.requests[0].messages.map((m) => m.content);
    expect(sent.some((c) => c.startsWith(`m${dropped}w0 `))).toBe(false);
    expect(sent.some((c) => c.startsWith(`m${dropped + 1}w0 `))).toBe(true);
  });

  it('should rethrow an engine failure without storing anything in the cache', async () => {
    const { sut, engine, cache } = build();
    engine.fail(new EngineUnavailable('no replica'));
    const { sink, events } = recordingSink();
    await expect(
      sut.answer({ input: input(), route: ROUTE, prompt: spec('What is a KV cache?') }, sink),
    ).rejects.toBeInstanceOf(EngineUnavailable);
    expect(cache.entries.size).toBe(0);
    expect(events.some((e) => e.type === 'usage')).toBe(false);
  });

  it('should end an aborted turn mid-stream with RequestAborted, no usage and nothing cached', async () => {
    const { sut, engine, cache } = build();
    const controller = new AbortController();
    const { sink, events } = recordingSink(controller.signal);
    const streaming = engine.pauseAfterFirstToken();
    const answering = sut.answer({ input: input(), route: ROUTE, prompt: spec('What is a KV cache?') }, sink);
    await streaming;
    controller.abort();
    await expect(answering).rejects.toBeInstanceOf(RequestAborted);
    expect(engine.requests[0].signal).toBe(controller.signal);
    expect(events.filter((e) => e.type === 'token')).toHaveLength(1);
    expect(events.some((e) => e.type === 'usage')).toBe(false);
    expect(cache.entries.size).toBe(0);
  });
});
