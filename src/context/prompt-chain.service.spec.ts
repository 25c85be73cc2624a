import { fakeEngineTokenizer } from '../../test/factories/inference';
import { messagesDigest } from '../common/message-digest';
import { ContextConfig } from '../config/context.config';
import { InferenceConfig } from '../config/inference.config';
import { blockHashChain, commonPrefixBlocks } from '../inference/block-hash';
import type { ChatMessage } from '../inference/inference.types';
import { packChain } from './prefix-reuse.service';
import { contentId, GENERATION_MARKER, PromptChainService, ROLE_MARKER } from './prompt-chain.service';
import type { TokenizerService } from './tokenizer.service';

/** The real PromptChainService and TokenizerService over a FakeEngineAdapter (one token per character). */
function build(chainTokens = 1_000_000) {
  const contextConfig = Object.assign(new ContextConfig(), { CONTEXT_PROMPT_CHAIN_TOKENS: chainTokens });
  const inferenceConfig = Object.assign(new InferenceConfig(), { INFERENCE_MODEL: 'fake-model' });
  const { tokenizer, engine } = fakeEngineTokenizer(inferenceConfig, contextConfig);
  return { sut: new PromptChainService(tokenizer, inferenceConfig, contextConfig), tokenizer, engine };
}

/** The prompt of turn `t`: system, t-1 earlier exchanges, the new question. */
function prompt(t: number, system = 'You are kvchat, a helpful assistant.'): ChatMessage[] {
  const out: ChatMessage[] = [{ role: 'system', content: system }];
  for (let i = 1; i < t; i++) {
    out.push({ role: 'user', content: `Question ${i}: what does block ${i} of the prefix cache hold?` });
    out.push({ role: 'assistant', content: `Answer ${i}: `.padEnd(70 + ((i * 13) % 40), 'k') });
  }
  out.push({ role: 'user', content: `Question ${t}: and what comes next?` });
  return out;
}

/** Content tokens of each message, counted by the (fake) engine's tokenizer. */
function counts(tokenizer: TokenizerService, messages: ChatMessage[]): Promise<number[]> {
  return Promise.all(messages.map((m) => tokenizer.count(m.content)));
}

/** The prompt as laid out from scratch: every message framed, its content ids from its running digest, every block hashed. */
async function whole(tokenizer: TokenizerService, messages: ChatMessage[], salt?: string) {
  const { perMessage, generationPrompt } = await tokenizer.overheads();
  const tokens: number[] = [];
  for (const [i, m] of messages.entries()) {
    for (let k = 0; k < perMessage; k++) tokens.push(ROLE_MARKER[m.role]);
    const id = contentId(messagesDigest(messages.slice(0, i + 1)));
    for (let k = 0; k < (await tokenizer.count(m.content)); k++) tokens.push(id);
  }
  for (let k = 0; k < generationPrompt; k++) tokens.push(GENERATION_MARKER);
  return { tokens, blockHashes: blockHashChain(tokens, 16, salt) };
}

describe('PromptChainService', () => {
  it("should build each turn's fingerprint and chain exactly as from scratch, hashing only the new blocks", async () => {
    const { sut, tokenizer } = build();
    let previous: string[] = [];
    for (let t = 1; t <= 12; t++) {
      const messages = prompt(t);
      const chain = await sut.build('c1', messages, await counts(tokenizer, messages), 'salt-a');
      const expected = await whole(tokenizer, messages, 'salt-a');

      expect(Array.from(chain.tokens)).toEqual(expected.tokens);
      expect(chain.blockHashes).toEqual(expected.blockHashes);
      expect(chain.known.packed).toBe(packChain(expected.blockHashes));
      expect(chain.messageDigests).toEqual(messages.map((_, i) => messagesDigest(messages.slice(0, i + 1))));
      const common = commonPrefixBlocks(previous, expected.blockHashes);
      if (t > 1) {
        expect(chain.known.previous).toMatchObject({ commonBlocks: common, packed: packChain(previous) });
        // The previous question, the answer and the new question; the rest is kept.
        expect(chain.work.freshMessages).toBe(3);
        expect(chain.work.hashedBlocks).toBe(expected.blockHashes.length - common);
      }
      if (t === 12) expect(chain.work.hashedBlocks).toBeLessThan(expected.blockHashes.length / 4);
      previous = expected.blockHashes;
    }
  });

  it('should keep only what still matches when an earlier message changed (a compaction, a new system prompt)', async () => {
    const { sut, tokenizer } = build();
    await sut.build('c2', prompt(8), await counts(tokenizer, prompt(8)), undefined);
    const compacted = [prompt(8)[0], ...prompt(8).slice(5)];
    const chain = await sut.build('c2', compacted, await counts(tokenizer, compacted), undefined);
    const expected = await whole(tokenizer, compacted);
    const reworded = prompt(9, 'You are kvchat, a terse assistant.');
    const again = await sut.build('c2', reworded, await counts(tokenizer, reworded), undefined);

    expect(Array.from(chain.tokens)).toEqual(expected.tokens);
    expect(chain.blockHashes).toEqual(expected.blockHashes);
    expect(Array.from(again.tokens)).toEqual((await whole(tokenizer, reworded)).tokens);
    expect(again.blockHashes).toEqual((await whole(tokenizer, reworded)).blockHashes);
    // A changed message differs from its first content token on: only its 5 framing tokens still match.
    expect(again.known.previous?.commonBlocks).toBe(0);
    expect(chain.messageDigests.at(-1)).toBe(messagesDigest(compacted));
    expect(again.messageDigests.at(-1)).toBe(messagesDigest(reworded));
  });

  it('should build from scratch under another salt, for another conversation, and when it keeps nothing', async () => {
    const { sut, tokenizer } = build();
    const { sut: keepsNothing } = build(0);
    await sut.build('c3', prompt(5), await counts(tokenizer, prompt(5)), 'tenant-a');
    await keepsNothing.build('c3', prompt(5), await counts(tokenizer, prompt(5)), 'tenant-a');

    const salted = await sut.build('c3', prompt(6), await counts(tokenizer, prompt(6)), 'tenant-b');
    const other = await sut.build('c4', prompt(6), await counts(tokenizer, prompt(6)), 'tenant-b');
    const none = await keepsNothing.build('c3', prompt(6), await counts(tokenizer, prompt(6)), 'tenant-a');

    expect(salted.known.previous).toBeNull();
    expect(salted.work.hashedBlocks).toBe(salted.blockHashes.length);
    expect(other.known.previous).toBeNull();
    expect(none.known.previous).toBeNull();
    expect(none.blockHashes).toEqual(
      (await sut.build('c5', prompt(6), await counts(tokenizer, prompt(6)), 'tenant-a')).blockHashes,
    );
  });

  it('should ask the tokenizer nothing, even for a prompt built from scratch (another replica had the last turn)', async () => {
    const { sut: keepsNothing, tokenizer, engine } = build(0);
    const messages = prompt(41);
    const contentTokens = await counts(tokenizer, messages);
    await tokenizer.overheads();
    const asked = engine.tokenizeCalls.length;
    const encode = jest.spyOn(tokenizer, 'encode');
    const count = jest.spyOn(tokenizer, 'count');

    const chain = await keepsNothing.build('c6', messages, contentTokens, undefined);

    expect(engine.tokenizeCalls).toHaveLength(asked);
    expect(encode).not.toHaveBeenCalled();
    expect(count).not.toHaveBeenCalled();
    expect(chain.work).toEqual({ hashedBlocks: chain.blockHashes.length, freshMessages: messages.length });
    expect(Array.from(chain.tokens)).toEqual((await whole(tokenizer, messages)).tokens);
  });

  it('should refuse token counts that do not match the messages', async () => {
    const { sut } = build();

    await expect(sut.build('c7', prompt(2), [1, 2], undefined)).rejects.toThrow(
      '4 messages but 2 token counts',
    );
  });
});
