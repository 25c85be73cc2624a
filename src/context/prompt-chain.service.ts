import { Injectable } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { EMPTY_MESSAGES_DIGEST, nextMessageDigest } from '../common/message-digest';
import { ContextConfig } from '../config/context.config';
import { InferenceConfig } from '../config/inference.config';
import { extendBlockHashChain } from '../inference/block-hash';
import type { ChatMessage } from '../inference/inference.types';
import { type KnownChains, packChain, STORED_HASH_CHARS } from './prefix-reuse.service';
import { TokenizerService } from './tokenizer.service';

/** Placeholder ids standing for the chat template's tokens around each message, by role (never sent to an engine). */
export const ROLE_MARKER: Record<ChatMessage['role'], number> = { system: -1, user: -2, assistant: -3 };
/** Placeholder id for the generation prompt's tokens. */
export const GENERATION_MARKER = -4;

/** A prompt in the engine's token space and its salted block hash chain. */
export interface PromptChain {
  /**
   * The fingerprint, the prompt laid out in the engine's token space: for each message, `perMessage`
   * ROLE_MARKER ids standing for the chat template's tokens, then as many ids as its content has tokens,
   * each `contentId(digest)` of the running digest through that message; then `generationPrompt`
   * GENERATION_MARKER ids (TokenizerService.overheads). Its length is the prompt's token count; two prompts
   * share a block-aligned prefix of it exactly when they share the messages up to there (a message that
   * differs differs from its first content token on). Only counts are needed, never token ids: a chain
   * rebuilt from scratch (another replica had the previous turn, or it was evicted) reads the stored
   * counts and asks the tokenizer nothing.
   */
  tokens: Int32Array;
  /** `blockHashChain(tokens, INFERENCE_BLOCK_SIZE, salt)`. */
  blockHashes: string[];
  /** The running digest (`nextMessageDigest`) after each message: `messageDigests[i]` covers messages 0..i. */
  messageDigests: string[];
  /** For PrefixReuseService.record: the packed chain and what it shares with the previous prompt built here. */
  known: KnownChains;
  /** Blocks hashed and messages laid out for this prompt (the rest came from the previous prompt). */
  work: { hashedBlocks: number; freshMessages: number };
}

/**
 * The fingerprint id of every content token of the message whose running digest is `digest`: 28 bits of
 * it, so never one of the (negative) markers, and equal for two messages only when their digests are.
 */
export function contentId(digest: string): number {
  return Number.parseInt(digest.slice(0, 7), 16);
}

/** A conversation's last prompt, as built by this process. */
interface LastPrompt {
  messages: readonly ChatMessage[];
  /** Token offset at which each message's segment ends in `tokens`. */
  ends: Int32Array;
  tokens: Int32Array;
  blockHashes: string[];
  messageDigests: string[];
  packed: string;
  salt: string | undefined;
}

/**
 * Builds each turn's prompt fingerprint, block hash chain and running message digest from the
 * conversation's previous prompt, so a turn's hashing is proportional to what is new (the last answer
 * and the new message), not to the conversation. It takes each message's token count (stored with the
 * message, or counted once for the head, the summary and the new message) and tokenizes nothing.
 *
 * The previous prompt is kept per conversation in a process-local LRU bounded in tokens
 * (CONTEXT_PROMPT_CHAIN_TOKENS; 12-18 bytes of heap per token, measured: the fingerprint, its hashes,
 * the messages' text and digests). The leading messages the new prompt shares with it (same role, same content)
 * keep their fingerprint; the shared full blocks keep their hashes. A conversation whose previous turn
 * ran on another api process, or was evicted, is built from scratch: the same result, for one digest per
 * message and one hash per block (no tokenizer call).
 * Copying the kept part of the fingerprint is one memcpy; comparing the messages is one string compare
 * each (the database hands back new strings every turn).
 */
@Injectable()
export class PromptChainService {
  private readonly last: LRUCache<string, LastPrompt> | null;

  constructor(
    private readonly tokenizer: TokenizerService,
    private readonly inference: InferenceConfig,
    context: ContextConfig,
  ) {
    this.last =
      context.CONTEXT_PROMPT_CHAIN_TOKENS > 0
        ? new LRUCache<string, LastPrompt>({
            maxSize: context.CONTEXT_PROMPT_CHAIN_TOKENS,
            sizeCalculation: (p) => Math.max(1, p.tokens.length),
          })
        : null;
  }

  /**
   * The fingerprint and chain of `messages`, the prompt of `conversationId`'s turn, remembered as its
   * last prompt. Call it once per turn, under the conversation's turn lock (turns of one conversation
   * are serial).
   * @param contentTokens tokens of each message's content (no template), in the order of `messages`
   * @param salt the tenant's engine cache salt (mixed into the first block)
   * @throws Error when `contentTokens` does not give one count per message; Engine* errors when the
   *   template overheads are not known yet and the engine's tokenizer fails
   */
  async build(
    conversationId: string,
    messages: readonly ChatMessage[],
    contentTokens: readonly number[],
    salt: string | undefined,
  ): Promise<PromptChain> {
    if (contentTokens.length !== messages.length)
      throw new Error(`${messages.length} messages but ${contentTokens.length} token counts`);
    const { perMessage, generationPrompt } = await this.tokenizer.overheads();
    const blockSize = this.inference.INFERENCE_BLOCK_SIZE;
    const cached = this.last?.get(conversationId);
    const previous = cached && cached.salt === salt ? cached : undefined;

    // Leading messages the previous prompt had too: their fingerprint segments are the same.
    let same = 0;
    if (previous) {
      const n = Math.min(previous.messages.length, messages.length);
      while (
        same < n &&
        previous.messages[same].role === messages[same].role &&
        previous.messages[same].content === messages[same].content
      )
        same++;
    }
    const keptTokens = previous && same > 0 ? previous.ends[same - 1] : 0;
    const fresh = messages.slice(same);
    const messageDigests = previous && same > 0 ? previous.messageDigests.slice(0, same) : [];
    for (const m of fresh)
      messageDigests.push(
        nextMessageDigest(messageDigests.at(-1) ?? EMPTY_MESSAGES_DIGEST, m.role, m.content),
      );
    let length = keptTokens + generationPrompt;
    for (let i = same; i < messages.length; i++) length += perMessage + contentTokens[i];

    const tokens = new Int32Array(length);
    const ends = new Int32Array(messages.length);
    if (previous && same > 0) {
      tokens.set(previous.tokens.subarray(0, keptTokens));
      ends.set(previous.ends.subarray(0, same));
    }
    let at = keptTokens;
    for (let i = same; i < messages.length; i++) {
      tokens.fill(ROLE_MARKER[messages[i].role], at, at + perMessage);
      at += perMessage;
      tokens.fill(contentId(messageDigests[i]), at, at + contentTokens[i]);
      at += contentTokens[i];
      ends[i] = at;
    }
    tokens.fill(GENERATION_MARKER, at, at + generationPrompt);

    // The common prefix: past the shared messages, the next message's template framing may still match.
    let common = keptTokens;
    if (previous) {
      const n = Math.min(previous.tokens.length, tokens.length);
      while (common < n && previous.tokens[common] === tokens[common]) common++;
    }
    const commonBlocks = Math.floor(common / blockSize);
    const kept = previous ? previous.blockHashes.slice(0, commonBlocks) : [];
    const blockHashes = extendBlockHashChain(kept, tokens, blockSize, salt);
    const packed = previous
      ? previous.packed.slice(0, commonBlocks * STORED_HASH_CHARS) +
        packChain(blockHashes.slice(commonBlocks))
      : packChain(blockHashes);
    this.last?.set(conversationId, { messages, ends, tokens, blockHashes, messageDigests, packed, salt });
    return {
      tokens,
      blockHashes,
      messageDigests,
      known: {
        packed,
        previous: previous
          ? { promptTokens: previous.tokens.length, packed: previous.packed, commonBlocks }
          : null,
      },
      work: { hashedBlocks: blockHashes.length - kept.length, freshMessages: fresh.length },
    };
  }
}
