import type { ContextConfig } from '../config/context.config';
import { EngineTokenizeUnsupported, EngineUnavailable } from '../inference/inference.errors';
import type { InferenceService } from '../inference/inference.service';
import type { TokenizeInput } from '../inference/inference.types';
import type { InferenceConfig } from '../config/inference.config';
import { LocalTokenizer } from './local-tokenizer';
import { PromptChainService } from './prompt-chain.service';
import { TokenizerService } from './tokenizer.service';

const config = (TOKENIZER: ContextConfig['TOKENIZER'] = 'auto'): ContextConfig =>
  ({ TOKENIZER }) as ContextConfig;

/** A ChatML engine over the local BPE, counting its /tokenize calls. */
function chatmlEngine(): InferenceService & { calls: TokenizeInput[] } {
  const local = new LocalTokenizer();
  const calls: TokenizeInput[] = [];
  return {
    calls,
    tokenize: (input: TokenizeInput) => {
      calls.push(input);
      if ('prompt' in input) return Promise.resolve(local.encode(input.prompt));
      const ids: number[] = [];
      for (const m of input.messages) ids.push(1, ...local.encode(`${m.role}\n${m.content}`), 2, 198);
      if (input.addGenerationPrompt) ids.push(1, ...local.encode('assistant\n'));
      return Promise.resolve(ids);
    },
  } as unknown as InferenceService & { calls: TokenizeInput[] };
}

describe('TokenizerService', () => {
  it('should ask the engine once per distinct text, however often a turn needs it', async () => {
    const engine = chatmlEngine();
    const sut = new TokenizerService(engine, config());

    const counts = await Promise.all([
      sut.count('hello world'),
      sut.count('hello world'),
      sut.count('other text'),
    ]);
    await sut.count('hello world');

    expect(counts[0]).toBe(2);
    expect(engine.calls.filter((c) => 'prompt' in c && c.prompt === 'hello world')).toHaveLength(1);
    expect(sut.source).toBe('engine');
  });

  it("should measure the chat template's overheads on the engine", async () => {
    const sut = new TokenizerService(chatmlEngine(), config());

    expect(await sut.overheads()).toEqual({ perMessage: 5, generationPrompt: 3 });
  });

  it('should measure overheads that make a prompt fingerprint exactly as long as the engine counts it', async () => {
    const engine = chatmlEngine();
    const sut = new TokenizerService(engine, config());
    const chains = new PromptChainService(
      sut,
      { INFERENCE_BLOCK_SIZE: 16 } as InferenceConfig,
      { CONTEXT_PROMPT_CHAIN_TOKENS: 0 } as ContextConfig,
    );
    const messages = [
      { role: 'system' as const, content: 'You are kvchat.' },
      { role: 'user' as const, content: 'Date: 2026-01-01\n\nWhat is a KV cache?' },
      { role: 'assistant' as const, content: 'It keeps attention keys and values.' },
      { role: 'user' as const, content: 'And prefix caching?' },
    ];

    const contentTokens = await Promise.all(messages.map((m) => sut.count(m.content)));
    const fingerprint = (await chains.build('c', messages, contentTokens, undefined)).tokens;
    const exact = await engine.tokenize({ messages, addGenerationPrompt: true });

    expect(fingerprint).toHaveLength(exact.length);
  });

  it('should fall back to the local tokenizer when the engine has no /tokenize', async () => {
    const engine = {
      tokenize: jest.fn().mockRejectedValue(new EngineTokenizeUnsupported('404')),
    } as unknown as InferenceService;
    const sut = new TokenizerService(engine, config());

    expect(await sut.count('hello world')).toBe(2);
    expect(await sut.count('hello again')).toBe(2);
    expect(sut.source).toBe('local');
    expect(engine.tokenize).toHaveBeenCalledTimes(1);
    expect(await sut.overheads()).toEqual({ perMessage: 5, generationPrompt: 3 });
  });

  it('should not silently switch tokenizers when the engine is down', async () => {
    const engine = {
      tokenize: jest.fn().mockRejectedValue(new EngineUnavailable('down')),
    } as unknown as InferenceService;
    const sut = new TokenizerService(engine, config());

    await expect(sut.count('x')).rejects.toBeInstanceOf(EngineUnavailable);
  });

  it('should never call the engine with TOKENIZER=local', async () => {
    const engine = chatmlEngine();
    const sut = new TokenizerService(engine, config('local'));

    expect(await sut.count('hello world')).toBe(2);
    expect(engine.calls).toHaveLength(0);
  });
});
