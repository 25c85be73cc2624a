import { fakeSummaries } from '../../../test/fakes/fake-summaries';
import type { ContextConfig } from '../../config/context.config';
import type { InferenceConfig } from '../../config/inference.config';
import { EngineTokenizeUnsupported } from '../../inference/inference.errors';
import type { InferenceService } from '../../inference/inference.service';
import type { ChatMessage } from '../../inference/inference.types';
import { ContextLengthExceeded } from '../context.errors';
import type { ContextPolicy, ConversationContextState } from '../context-policy';
import { ContextWindowService, type PreparedPrompt } from '../context-window.service';
import type { PrefixReuseService } from '../prefix-reuse.service';
import { PromptChainService } from '../prompt-chain.service';
import { PromptAssembler } from '../prompt-assembler';
import type { HistoryMessage } from '../prompt.types';
import { TokenizerService } from '../tokenizer.service';
import { CompactPolicy } from './compact.policy';
import { SlidingWindowPolicy } from './sliding.policy';
import { SummaryPolicy } from './summary.policy';

const CONTEXT = 2048;
const RESERVED = 256;
const BUDGET = CONTEXT - RESERVED;

const contextConfig = {
  CONTEXT_POLICY: 'compact',
  CONTEXT_LOW_WATER: 0.6,
  CONTEXT_SUMMARY_TRIGGER: 0.8,
  CONTEXT_SUMMARY_MAX_TOKENS: 64,
  CONTEXT_SUMMARY_WAIT_MS: 1000,
  PROMPT_LAYOUT: 'stable',
  PROMPT_DATE_IN_TAIL: true,
  TOKENIZER: 'auto',
  CONTEXT_PROMPT_CHAIN_TOKENS: 1_000_000,
} as ContextConfig;

/** An engine without /tokenize: the tokenizer falls back to the local BPE. */
const noTokenizeEngine = {
  modelName: () => Promise.resolve('m'),
  tokenize: () => Promise.reject(new EngineTokenizeUnsupported('no /tokenize')),
} as unknown as InferenceService;

const noReuse = {
  record: () => Promise.resolve({ reusableTokens: 0, previousPromptTokens: null }),
} as unknown as PrefixReuseService;

const WORDS =
  'cache block token prefix engine replica latency memory window context history answer question'.split(' ');
const text = (seed: number, words: number): string =>
  Array.from({ length: words }, (_, i) => WORDS[(seed * 7 + i * 3) % WORDS.length]).join(' ');

interface Turn {
  prepared: PreparedPrompt;
  state: ConversationContextState;
}

/** Runs `turns` turns through the window with `policy`, feeding each turn's output into the next. */
async function converse(policy: ContextPolicy, turns: number): Promise<Turn[]> {
  const assembler = new PromptAssembler(contextConfig);
  const tokenizer = new TokenizerService(noTokenizeEngine, contextConfig);
  const inferenceConfig = {
    INFERENCE_MAX_CONTEXT_TOKENS: CONTEXT,
    INFERENCE_BLOCK_SIZE: 16,
  } as InferenceConfig;
  const sut = new ContextWindowService(
    policy,
    assembler,
    tokenizer,
    noReuse,
    inferenceConfig,
    new PromptChainService(tokenizer, inferenceConfig, contextConfig),
  );
  const history: HistoryMessage[] = [];
  let state: ConversationContextState | null = null;
  const out: Turn[] = [];
  for (let t = 1; t <= turns; t++) {
    const prepared = await sut.prepare({
      tenantId: 't',
      conversationId: 'c',
      state,
      spec: {
        stablePrefix: 'You are kvchat.',
        templateVersion: 'v1',
        history: [...history],
        userMessage: text(t, 20),
      },
      reservedOutputTokens: RESERVED,
      render: { now: new Date('2026-05-01T12:00:00Z') },
    });
    state = prepared.state;
    history.push({
      role: 'user',
      content: prepared.userContent,
      sequence: history.length + 1,
      tokenCount: prepared.userTokenCount,
    });
    history.push({ role: 'assistant', content: text(t + 100, 60), sequence: history.length + 1 });
    out.push({ prepared, state });
  }
  return out;
}

/** True when `next` starts with every message of `prev` (the engine can reuse all of prev's KV). */
const extends_ = (prev: ChatMessage[], next: ChatMessage[]): boolean =>
  prev.length <= next.length &&
  prev.every((m, i) => m.role === next[i].role && m.content === next[i].content);

describe('context-window policies', () => {
  it.each([
    ['compact', new CompactPolicy(contextConfig)],
    ['sliding', new SlidingWindowPolicy()],
    ['summary', new SummaryPolicy(contextConfig, fakeSummaries(true))],
  ])('should keep every prompt within the budget with %s', async (_, policy) => {
    const turns = await converse(policy, 60);

    for (const { prepared } of turns)
      expect(prepared.window.estimatedPromptTokens).toBeLessThanOrEqual(BUDGET);
    expect(turns.at(-1)?.state.droppedThroughSequence).toBeGreaterThan(0);
  });

  it('should change the prefix with compact only at the turns that compact, to the low-water mark', async () => {
    const turns = await converse(new CompactPolicy(contextConfig), 60);
    const compactions = turns.filter((t) => t.prepared.window.compacted);

    expect(compactions.length).toBeGreaterThanOrEqual(2);
    expect(compactions.length).toBeLessThan(10);
    for (let i = 1; i < turns.length; i++) {
      const prev = turns[i - 1].prepared.messages.slice(0, -1);
      const next = turns[i].prepared.messages;
      expect({ turn: i + 1, extends: extends_(prev, next) }).toEqual({
        turn: i + 1,
        extends: !turns[i].prepared.window.compacted,
      });
    }
    for (const c of compactions)
      expect(c.prepared.window.estimatedPromptTokens).toBeLessThanOrEqual(BUDGET * 0.6);
  });

  it('should change the prefix with sliding on nearly every turn once the window is full', async () => {
    const turns = await converse(new SlidingWindowPolicy(), 60);
    const firstFull = turns.findIndex((t) => t.prepared.window.compacted);
    const after = turns.slice(firstFull);
    const broken = after.filter(
      (t, i) => i > 0 && !extends_(after[i - 1].prepared.messages.slice(0, -1), t.prepared.messages),
    );

    expect(firstFull).toBeGreaterThan(0);
    expect(broken.length).toBeGreaterThanOrEqual(after.length - 2);
  });

  it('should fold old turns into the summary right after the stable prefix, changing the prefix only at compaction', async () => {
    const summaries = fakeSummaries(true);
    const turns = await converse(new SummaryPolicy(contextConfig, summaries), 60);
    const compactions = turns.filter((t) => t.prepared.window.compacted);

    expect(compactions.length).toBeGreaterThanOrEqual(2);
    for (const c of compactions) {
      expect(c.prepared.messages[1].role).toBe('system');
      expect(c.prepared.messages[1].content).toMatch(
        /^Summary of the earlier conversation:\nSummary of messages 1-\d+/,
      );
      expect(c.state.summaryThroughSequence).toBe(c.state.droppedThroughSequence);
    }
    for (let i = 1; i < turns.length; i++) {
      const prev = turns[i - 1].prepared.messages.slice(0, -1);
      expect(extends_(prev, turns[i].prepared.messages)).toBe(!turns[i].prepared.window.compacted);
    }
    // The job was queued ahead of the compaction (past the trigger), not only when it was needed.
    expect(summaries.requested.length).toBeGreaterThan(compactions.length);
  });

  it('should drop turns and keep the old summary when no summary arrives in time', async () => {
    const turns = await converse(new SummaryPolicy(contextConfig, fakeSummaries(false)), 40);

    for (const { prepared } of turns)
      expect(prepared.window.estimatedPromptTokens).toBeLessThanOrEqual(BUDGET);
    expect(turns.some((t) => t.prepared.window.compacted)).toBe(true);
    expect(turns.every((t) => t.state.summary === undefined)).toBe(true);
  });

  it('should refuse a message that cannot fit even without history', async () => {
    const sut = new CompactPolicy(contextConfig);

    await expect(
      sut.fit({
        tenantId: 't',
        conversationId: 'c',
        state: { droppedThroughSequence: 0, compactions: 0 },
        history: [],
        fixedTokens: BUDGET + 1,
        budget: BUDGET,
        summaryTokens: () => Promise.resolve(0),
      }),
    ).rejects.toBeInstanceOf(ContextLengthExceeded);
  });
});
