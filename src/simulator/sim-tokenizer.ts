import { Tiktoken } from 'js-tiktoken/lite';
import cl100kBase from 'js-tiktoken/ranks/cl100k_base';
import { LRUCache } from 'lru-cache';

import { type ChatMessage, IM_END, IM_START } from './chat-template';

export const END_OF_TEXT = '<|endoftext|>';

/**
 * A real BPE tokenizer: cl100k_base ranks (bundled with js-tiktoken, nothing downloaded) with the
 * ChatML special tokens at the ids OpenAI assigns them in cl100k (`<|im_start|>` 100264,
 * `<|im_end|>` 100265). Special tokens are recognised inside text, as HF tokenizers do when vLLM
 * tokenizes a rendered chat template.
 */
export class SimTokenizer {
  readonly imStartId = 100264;
  readonly imEndId = 100265;
  readonly endOfTextId: number;
  private readonly bpe: Tiktoken;
  /**
   * Per-message token cache. tiktoken splits on special tokens before BPE, so a rendered chat is
   * exactly the concatenation of per-message pieces; caching them makes multi-turn replays cheap.
   */
  private readonly messageCache = new LRUCache<string, readonly number[]>({ max: 4096 });
  private readonly newlineIds: readonly number[];

  constructor() {
    this.bpe = sharedBpe();
    this.endOfTextId = cl100kBase.special_tokens[END_OF_TEXT];
    this.newlineIds = this.bpe.encode('\n');
  }

  /** Token ids of plain text; special-token strings in it are encoded as special tokens. */
  encode(text: string): number[] {
    return this.bpe.encode(text, 'all');
  }

  /** Text of token ids (special tokens rendered as their strings). */
  decode(tokens: readonly number[]): string {
    return this.bpe.decode([...tokens]);
  }

  /** Token ids of `renderChatTemplate(messages, addGenerationPrompt)`, using the per-message cache. */
  encodeChat(messages: readonly ChatMessage[], addGenerationPrompt = true): number[] {
    const out: number[] = [];
    for (const m of messages) {
      const key = `${m.role}\u0000${m.content}`;
      let body = this.messageCache.get(key);
      if (!body) {
        body = this.encode(`${m.role}\n${m.content}`);
        this.messageCache.set(key, body);
      }
      out.push(this.imStartId, ...body, this.imEndId, ...this.newlineIds);
    }
    if (addGenerationPrompt) out.push(this.imStartId, ...this.encode('assistant\n'));
    return out;
  }
}

let bpeSingleton: Tiktoken | undefined;

/** Building the BPE from the ranks takes ~0.4 s; every engine in the process shares one (it is stateless). */
function sharedBpe(): Tiktoken {
  bpeSingleton ??= new Tiktoken(cl100kBase, { [IM_START]: 100264, [IM_END]: 100265 });
  return bpeSingleton;
}

/**
 * Streams the text of token ids one token at a time. A token may end inside a multi-byte UTF-8
 * character; its text is held back until the character completes (at most 4 tokens).
 */
export class IncrementalDetokenizer {
  private pending: number[] = [];

  constructor(private readonly tokenizer: SimTokenizer) {}

  /** The new text completed by `token` ('' while a character is still incomplete). */
  push(token: number): string {
    this.pending.push(token);
    const text = this.tokenizer.decode(this.pending);
    if (text.endsWith('\uFFFD') && this.pending.length < 4) return '';
    this.pending = [];
    return text;
  }

  /** Whatever is still held back. */
  flush(): string {
    if (this.pending.length === 0) return '';
    const text = this.tokenizer.decode(this.pending);
    this.pending = [];
    return text;
  }
}
