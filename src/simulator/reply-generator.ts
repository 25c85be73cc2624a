import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { type SimTokenizer } from './sim-tokenizer';

/** Why generation ended, in OpenAI terms. */
export type FinishReason = 'stop' | 'length';

/** Where the reply text came from. */
export type ReplySource = 'synthetic' | 'replies-file' | 'structured';

/** What the simulated model will "generate" for one request, decided before any timing. */
export interface GenerationPlan {
  /** Every generated token id, including an end-of-sequence or stop-string tokens. */
  outputIds: number[];
  /** Text delta shown for each generated token ('' for EOS and stop-string tokens). */
  deltas: string[];
  /** The visible text: the concatenation of `deltas`. */
  text: string;
  finishReason: FinishReason;
  /** vLLM's `stop_reason`: the matched stop string, or null. */
  stopReason: string | null;
  source: ReplySource;
}

/** Inputs of a generation plan. */
export interface PlanRequest {
  promptTokenIds: readonly number[];
  /** Upper bound on generated tokens (EOS included), already validated against the context. */
  maxTokens: number;
  /** The request's `seed`: part of what makes the reply deterministic. */
  seed?: number;
  stop?: readonly string[];
  /** Last user message of a chat request, to look up in the replies file. */
  lastUserMessage?: string;
  /**
   * The reply's text when the server decided it (a tool call's arguments, a JSON answer for
   * `response_format`): tokenized and generated like any reply (source `structured`).
   */
  structuredReply?: string;
  /** Token that ends a natural reply (`<|im_end|>` for chat, `<|endoftext|>` for completions). */
  eosTokenId: number;
}

/** Index of recorded dialogues: normalized user message -> the assistant reply that followed it. */
export type RepliesIndex = ReadonlyMap<string, string>;

/**
 * Loads a JSONL file whose lines are `{messages:[{role, content}]}` (like mtbench101.messages.jsonl)
 * into an index of user message -> following assistant reply. First occurrence wins. Throws with
 * the line number on malformed JSON.
 */
export function loadRepliesFile(path: string): RepliesIndex {
  const index = new Map<string, string>();
  const lines = readFileSync(path, 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (err) {
      throw new Error(`replies file ${path}:${i + 1}: ${(err as Error).message}`);
    }
    const messages = (parsed as { messages?: unknown }).messages;
    if (!Array.isArray(messages)) return;
    for (let m = 0; m + 1 < messages.length; m++) {
      const cur = messages[m] as { role?: unknown; content?: unknown };
      const next = messages[m + 1] as { role?: unknown; content?: unknown };
      if (cur.role === 'user' && next.role === 'assistant' && typeof cur.content === 'string') {
        const key = normalizeMessage(cur.content);
        if (typeof next.content === 'string' && !index.has(key)) index.set(key, next.content);
      }
    }
  });
  return index;
}

/** Whitespace-insensitive key of a user message. */
export function normalizeMessage(text: string): string {
  return text.trim().replace(/\s+/g, ' ');
}

/**
 * Decides the reply of a request deterministically: the same (prompt tokens, seed) always give the
 * same text. Synthetic replies start with `[simulated]` and say they come from the engine
 * simulator; their length is 64..128 tokens (configurable), chosen from the prompt's hash.
 */
export class ReplyGenerator {
  constructor(
    private readonly tokenizer: SimTokenizer,
    private readonly replyTokens: { min: number; max: number },
    private readonly replies: RepliesIndex = new Map(),
  ) {}

  plan(req: PlanRequest): GenerationPlan {
    const recorded = req.lastUserMessage !== undefined ? this.recordedReply(req.lastUserMessage) : undefined;
    const digest = createHash('sha256')
      .update(Buffer.from(Int32Array.from(req.promptTokenIds).buffer))
      .update(`|seed:${req.seed ?? 'none'}`)
      .digest();
    let naturalIds: number[];
    let source: ReplySource;
    if (req.structuredReply !== undefined) {
      naturalIds = this.tokenizer.encode(req.structuredReply);
      source = 'structured';
    } else if (recorded !== undefined) {
      naturalIds = this.tokenizer.encode(recorded);
      source = 'replies-file';
    } else {
      const span = this.replyTokens.max - this.replyTokens.min + 1;
      const length = this.replyTokens.min + (digest.readUInt32BE(0) % span);
      naturalIds = this.syntheticIds(digest, length);
      source = 'synthetic';
    }

    let contentIds: number[];
    let finishReason: FinishReason;
    let withEos: boolean;
    if (naturalIds.length + 1 <= req.maxTokens) {
      contentIds = naturalIds;
      finishReason = 'stop';
      withEos = true;
    } else {
      contentIds = naturalIds.slice(0, req.maxTokens);
      finishReason = 'length';
      withEos = false;
    }

    const fullText = this.tokenizer.decode(contentIds);
    const stopHit = findFirstStop(fullText, req.stop ?? []);
    if (stopHit) {
      // The stop string's tokens are generated but not shown (vLLM excludes it from the output).
      const throughStop = fullText.slice(0, stopHit.index + stopHit.stop.length);
      const ids = this.tokenizer.encode(throughStop).slice(0, req.maxTokens);
      const visible = fullText.slice(0, stopHit.index);
      return {
        outputIds: ids,
        deltas: this.deltasFor(ids, visible),
        text: visible,
        finishReason: 'stop',
        stopReason: stopHit.stop,
        source,
      };
    }
    const outputIds = withEos ? [...contentIds, req.eosTokenId] : contentIds;
    return {
      outputIds,
      deltas: this.deltasFor(outputIds, fullText),
      text: fullText,
      finishReason,
      stopReason: null,
      source,
    };
  }

  /**
   * The recorded reply to `message`, also when a backend put volatile context (a date line, retrieved
   * passages) in paragraphs before the user's words: leading paragraphs are dropped one at a time.
   */
  private recordedReply(message: string): string | undefined {
    if (this.replies.size === 0) return undefined;
    let rest = message;
    for (;;) {
      const found = this.replies.get(normalizeMessage(rest));
      if (found !== undefined) return found;
      const cut = rest.indexOf('\n\n');
      if (cut < 0) return undefined;
      rest = rest.slice(cut + 2);
    }
  }

  /** Per-token text deltas of `ids`, clipped so that they concatenate to exactly `visible`. */
  private deltasFor(ids: readonly number[], visible: string): string[] {
    const deltas: string[] = [];
    let pending: number[] = [];
    let shown = 0;
    let decoded = '';
    for (const id of ids) {
      pending.push(id);
      const piece = this.tokenizer.decode(pending);
      // A token may end inside a multi-byte character: hold it until the character completes.
      if (piece.endsWith('\uFFFD') && pending.length < 4) {
        deltas.push('');
        continue;
      }
      pending = [];
      decoded += piece;
      const upTo = Math.min(decoded.length, visible.length);
      deltas.push(upTo > shown ? visible.slice(shown, upTo) : '');
      shown = Math.max(shown, upTo);
    }
    if (shown < visible.length && deltas.length > 0) deltas[deltas.length - 1] += visible.slice(shown);
    return deltas;
  }

  /** Deterministic plain-English filler, clearly marked as synthetic, exactly `length` tokens. */
  private syntheticIds(digest: Buffer, length: number): number[] {
    let state = digest.readUInt32BE(4) || 1;
    const next = (): number => {
      // xorshift32: tiny, deterministic, good enough to pick words.
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) / 0x100000000;
    };
    const ids = this.tokenizer.encode(
      `[simulated] Synthetic reply ${digest.toString('hex', 8, 12)} from the kvchat engine simulator (not a language model).`,
    );
    while (ids.length < length) {
      const words = Array.from(
        { length: 6 + Math.floor(next() * 8) },
        () => WORDS[Math.floor(next() * WORDS.length)],
      );
      // Each sentence starts with " Word" after a ".", where BPE pre-tokenization always splits, so
      // encoding sentence by sentence gives the ids of the whole text without re-encoding it.
      ids.push(
        ...this.tokenizer.encode(
          ` ${words[0][0].toUpperCase()}${words[0].slice(1)} ${words.slice(1).join(' ')}.`,
        ),
      );
    }
    return ids.slice(0, length);
  }
}

function findFirstStop(text: string, stops: readonly string[]): { index: number; stop: string } | null {
  let best: { index: number; stop: string } | null = null;
  for (const stop of stops) {
    if (stop === '') continue;
    const index = text.indexOf(stop);
    if (index >= 0 && (best === null || index < best.index)) best = { index, stop };
  }
  return best;
}

const WORDS = (
  'cache block token prefix engine replica request latency memory window context history answer question ' +
  'system prompt tenant router queue batch stream chunk tier offload reuse turn message summary policy ' +
  'model server metric trace budget warm cold stable append volatile tail hash salt eviction pressure ' +
  'the a of and to in is that for with on as by this it from at be are was can will each every some ' +
  'simulated synthetic placeholder deterministic sample text value result step order state record'
).split(' ');
