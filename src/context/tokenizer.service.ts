import { createHash } from 'node:crypto';
import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { ContextConfig } from '../config/context.config';
import { EngineTokenizeUnsupported } from '../inference/inference.errors';
import { InferenceService } from '../inference/inference.service';
import type { ChatMessage } from '../inference/inference.types';
import { LocalTokenizer } from './local-tokenizer';

/** Tokens the engine's chat template adds around messages. */
export interface TemplateOverheads {
  /** Per message (role markers, separators), tokens. */
  perMessage: number;
  /** The generation prompt after the last message (`<|im_start|>assistant\n`), tokens. */
  generationPrompt: number;
}

/** Distinct texts whose token count is kept (~150 bytes each: the key and the entry). */
const COUNTED_TEXTS = 50_000;

/** ChatML (`<|im_start|>role\n...<|im_end|>\n`): used with the local tokenizer and when the engine cannot say. */
const CHATML_OVERHEADS: TemplateOverheads = { perMessage: 5, generationPrompt: 3 };

/**
 * Token counting for context windows and prefix accounting: the engine's own tokenizer through its
 * `/tokenize` (vLLM, the simulator) when it has one, else a local BPE (TOKENIZER=auto|engine|local).
 *
 * Counting is linear in the text and never blocks the event loop for more than a few ms: the local
 * BPE bounds pathological runs and yields between slices of work (see `cl100k`), and the
 * simulator's `/tokenize` does the same.
 *
 * Texts are counted once per process: counts are kept in an LRU (by sha256 of the text, COUNTED_TEXTS
 * entries), so the head, a summary or a repeated message are not sent to the engine again. Message counts
 * are also persisted (`Message.tokenCount`): a turn counts only what is new (the user message, then the
 * answer), never the history, and nothing keeps token ids (the prompt's fingerprint is laid out from
 * counts: PromptChainService).
 */
@Injectable()
export class TokenizerService implements OnModuleInit {
  private readonly logger = new Logger(TokenizerService.name);
  private readonly local = new LocalTokenizer();
  private readonly counts = new LRUCache<string, number>({ max: COUNTED_TEXTS });
  private readonly pending = new Map<string, Promise<number>>();
  private mode: 'engine' | 'local' | undefined;
  private overheadsPromise?: Promise<TemplateOverheads>;

  constructor(
    private readonly inference: InferenceService,
    private readonly config: ContextConfig,
  ) {
    if (config.TOKENIZER !== 'auto') this.mode = config.TOKENIZER;
  }

  /**
   * Where the local BPE counts, its encoder is built and warmed before serving: built lazily, it held the
   * event loop for 0.2-0.5 s on the first count of a request. TOKENIZER=local: here. `auto`: only once the
   * engine turns out to have no `/tokenize` — asked here once, in the background — since the encoder
   * holds ~20 MB (its WASM memory and ranks) that an api counting on the engine never uses.
   */
  onModuleInit(): void {
    if (this.config.TOKENIZER === 'local') this.local.warm();
    else if (this.config.TOKENIZER === 'auto') {
      // Settles `auto` now when the engine answers; an unreachable engine leaves it to the first count.
      void this.tokenize('kvchat tokenizer probe').catch(() => undefined);
    }
  }

  /** Which tokenizer counts: `engine` or `local` (undecided in `auto` mode until the first call). */
  get source(): 'engine' | 'local' | 'auto' {
    return this.mode ?? 'auto';
  }

  /** Token ids of `text` (no special tokens), asked anew. @throws Engine* errors when the engine tokenizer fails */
  async encode(text: string): Promise<Uint32Array> {
    if (text === '') return new Uint32Array(0);
    return this.tokenize(text);
  }

  /** Tokens of `text` (once per distinct text). @throws Engine* errors when the engine tokenizer fails */
  async count(text: string): Promise<number> {
    if (text === '') return 0;
    const key = createHash('sha256').update(text).digest('base64url');
    const known = this.counts.get(key);
    if (known !== undefined) return known;
    let running = this.pending.get(key);
    if (!running) {
      running = this.tokenize(text)
        .then((ids) => ids.length)
        .finally(() => this.pending.delete(key));
      this.pending.set(key, running);
    }
    const count = await running;
    this.counts.set(key, count);
    return count;
  }

  /** Tokens of each text, at most `concurrency` engine calls at a time. */
  async countAll(texts: readonly string[], concurrency = 8): Promise<number[]> {
    const out = new Array<number>(texts.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < texts.length) {
        const i = next++;
        out[i] = await this.count(texts[i]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, texts.length) }, worker));
    return out;
  }

  /**
   * Tokens the chat template adds, measured once on the engine (`/tokenize` with `messages`, minus
   * the content's own tokens), else ChatML's.
   */
  overheads(): Promise<TemplateOverheads> {
    this.overheadsPromise ??= this.measureOverheads().catch((e: unknown) => {
      this.overheadsPromise = undefined;
      throw e;
    });
    return this.overheadsPromise;
  }

  private async tokenize(text: string): Promise<Uint32Array> {
    if (this.mode !== 'local') {
      try {
        const ids = await this.inference.tokenize({ prompt: text });
        this.mode = 'engine';
        return Uint32Array.from(ids);
      } catch (e) {
        if (!(e instanceof EngineTokenizeUnsupported) || this.mode === 'engine') throw e;
        this.logger.warn(
          'the engine has no /tokenize: counting tokens with the local tokenizer (cl100k_base)',
        );
        if (this.mode === undefined) this.local.warm();
        this.mode = 'local';
      }
    }
    return this.local.encodeAsync(text);
  }

  private async measureOverheads(): Promise<TemplateOverheads> {
    await this.count('x'); // settles the mode (engine or local); the count below is then a cache hit
    if (this.mode !== 'engine') return CHATML_OVERHEADS;
    try {
      // Two messages, so a template's one-off additions (BOS, a default system prompt, a date line)
      // are told apart from what every message costs; they are folded into the generation prompt.
      const system: ChatMessage = { role: 'system', content: 'x' };
      const user: ChatMessage = { role: 'user', content: 'x' };
      const [bare, one, two, twoWithPrompt] = await Promise.all([
        this.count('x'),
        this.inference.tokenize({ messages: [system], addGenerationPrompt: false }),
        this.inference.tokenize({ messages: [system, user], addGenerationPrompt: false }),
        this.inference.tokenize({ messages: [system, user], addGenerationPrompt: true }),
      ]);
      const perMessage = Math.max(0, two.length - one.length - bare);
      const oneOff = Math.max(0, one.length - bare - perMessage);
      return { perMessage, generationPrompt: Math.max(0, twoWithPrompt.length - two.length) + oneOff };
    } catch (e) {
      this.logger.warn(
        `could not measure the chat template on the engine (${e instanceof Error ? e.message : String(e)}); assuming ChatML`,
      );
      return CHATML_OVERHEADS;
    }
  }
}
