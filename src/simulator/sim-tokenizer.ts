import { LRUCache } from 'lru-cache';
import { CL100K_SPECIALS, cl100k, END_OF_TEXT_TOKEN, IM_END_TOKEN, IM_START_TOKEN } from '../common/cl100k';
import { type ChatMessage } from './chat-template';

export const END_OF_TEXT = END_OF_TEXT_TOKEN;

/**
 * A real BPE tokenizer: cl100k_base (tiktoken, nothing downloaded) with the ChatML special tokens at
 * the ids OpenAI assigns them in cl100k (`<|im_start|>` 100264, `<|im_end|>` 100265). Special tokens
 * are recognised inside text, as HF tokenizers do when vLLM tokenizes a rendered chat template.
 * Linear in the input (see `cl100k`); the `*Async` variants yield to the event loop while they work,
 * which the in-process simulator needs so that a hostile prompt cannot stall the API beside it.
 */
export class SimTokenizer {
  readonly imStartId = CL100K_SPECIALS[IM_START_TOKEN];
  readonly imEndId = CL100K_SPECIALS[IM_END_TOKEN];
  readonly endOfTextId = CL100K_SPECIALS[END_OF_TEXT_TOKEN];
  /**
   * Per-message token cache. Special tokens split the text before BPE, so a rendered chat is exactly
   * the concatenation of per-message pieces; caching them makes multi-turn replays cheap.
   */
  private readonly messageCache = new LRUCache<string, readonly number[]>({ max: 4096 });
  private readonly newlineIds: readonly number[];
  private readonly generationPromptIds: readonly number[];
  private readonly utf8 = new TextDecoder();

  constructor() {
    // Built and warmed here, at the simulator's boot, rather than on its first request.
    cl100k.warm();
    this.newlineIds = this.encode('\n');
    this.generationPromptIds = [this.imStartId, ...this.encode('assistant\n')];
  }

  /** Token ids of plain text; special-token strings in it are encoded as special tokens. */
  encode(text: string): number[] {
    return Array.from(cl100k.encode(text, { specials: true }));
  }

  /** As `encode`, yielding to the event loop every few ms of work. */
  async encodeAsync(text: string): Promise<number[]> {
    return Array.from(await cl100k.encodeAsync(text, { specials: true }));
  }

  /** Text of token ids (special tokens rendered as their strings; a cut character as U+FFFD). */
  decode(tokens: readonly number[]): string {
    return this.utf8.decode(cl100k.decodeBytes(tokens));
  }

  /** UTF-8 bytes of token ids. */
  decodeBytes(tokens: readonly number[]): Uint8Array {
    return cl100k.decodeBytes(tokens);
  }

  /** Token ids of `renderChatTemplate(messages, addGenerationPrompt)`, using the per-message cache. */
  encodeChat(messages: readonly ChatMessage[], addGenerationPrompt = true): number[] {
    return this.assemble(
      messages.map((m) => this.cachedBody(m) ?? this.storeBody(m, this.encode(`${m.role}\n${m.content}`))),
      addGenerationPrompt,
    );
  }

  /** As `encodeChat`, yielding to the event loop while new messages are encoded. */
  async encodeChatAsync(messages: readonly ChatMessage[], addGenerationPrompt = true): Promise<number[]> {
    const bodies: (readonly number[])[] = [];
    for (const m of messages) {
      bodies.push(this.cachedBody(m) ?? this.storeBody(m, await this.encodeAsync(`${m.role}\n${m.content}`)));
    }
    return this.assemble(bodies, addGenerationPrompt);
  }

  private cachedBody(m: ChatMessage): readonly number[] | undefined {
    return this.messageCache.get(`${m.role}\u0000${m.content}`);
  }

  private storeBody(m: ChatMessage, body: readonly number[]): readonly number[] {
    this.messageCache.set(`${m.role}\u0000${m.content}`, body);
    return body;
  }

  private assemble(bodies: readonly (readonly number[])[], addGenerationPrompt: boolean): number[] {
    const out: number[] = [];
    for (const body of bodies) {
      out.push(this.imStartId);
      for (const id of body) out.push(id);
      out.push(this.imEndId, ...this.newlineIds);
    }
    if (addGenerationPrompt) out.push(...this.generationPromptIds);
    return out;
  }
}

/**
 * Streams the text of token ids one token at a time. A token may end inside a multi-byte UTF-8
 * character; its bytes are held back (a streaming UTF-8 decoder) until the character completes.
 */
export class IncrementalDetokenizer {
  private readonly utf8 = new TextDecoder();

  constructor(private readonly tokenizer: SimTokenizer) {}

  /** The new text completed by `token` ('' while a character is still incomplete). */
  push(token: number): string {
    return this.utf8.decode(this.tokenizer.decodeBytes([token]), { stream: true });
  }

  /** Whatever is still held back (an incomplete character becomes U+FFFD). */
  flush(): string {
    return this.utf8.decode();
  }
}
