import { Inject, Injectable } from '@nestjs/common';
import { EMPTY_MESSAGES_DIGEST } from '../common/message-digest';
import { InferenceConfig } from '../config/inference.config';
import type { ChatMessage, ChatResult } from '../inference/inference.types';
import type { MessageCacheReport } from './cache-report';
import {
  CONTEXT_POLICY,
  type ContextPolicy,
  type ConversationContextState,
  initialContextState,
  type WindowMessage,
} from './context-policy';
import { ContextLengthExceeded } from './context.errors';
import { PrefixReuseService } from './prefix-reuse.service';
import { PromptAssembler } from './prompt-assembler';
import { PromptChainService } from './prompt-chain.service';
import type { PromptRenderContext, PromptSpec } from './prompt.types';
import { TokenizerService } from './tokenizer.service';

/** One turn's prompt to fit. */
export interface WindowRequest {
  tenantId: string;
  conversationId: string;
  /** The conversation's window state (null for a conversation no policy has touched). */
  state: ConversationContextState | null;
  /**
   * The agent's prompt, with the history after the last compaction point (`state.droppedThroughSequence`):
   * older messages are never sent again, so they are not loaded.
   */
  spec: PromptSpec;
  /** The tenant's engine cache salt: mixed into the prompt's block hash chain as the engine mixes it. */
  cacheSalt?: string;
  /** Tokens reserved for the answer (the turn's `maxTokens`). */
  reservedOutputTokens: number;
  render: PromptRenderContext;
}

/** What the window did this turn (stored in the message's cache report as `window`). */
export interface ContextWindowReport {
  policy: string;
  /** Prompt tokens allowed: context length minus reserved output tokens. */
  budget: number;
  /** The backend's count of this prompt, tokens (the engine's `prompt_tokens` is authoritative). */
  estimatedPromptTokens: number;
  droppedThroughSequence: number;
  summaryThroughSequence?: number;
  /** True when the window moved this turn (the prefix after the stable part changed on purpose). */
  compacted: boolean;
  compactions: number;
}

/** A prompt fitted to the window, ready for the engine. */
export interface PreparedPrompt {
  messages: ChatMessage[];
  templateVersion: string;
  /** The new user message as sent; later turns replay it byte for byte. */
  userContent: string;
  /** Tokens of `userContent`. */
  userTokenCount: number;
  /** Counts of history messages that had none (sequence -> tokens), to persist. */
  historyTokenCounts: Record<number, number>;
  /** The prompt in the engine's token space (template framing as placeholders), for routing and accounting. */
  promptFingerprint: Int32Array;
  /**
   * `blockHashChain(promptFingerprint, INFERENCE_BLOCK_SIZE, cacheSalt)`: hashed once (only the blocks
   * after those shared with the conversation's previous prompt, PromptChainService), for reuse
   * accounting and routing.
   */
  promptBlockHashes: string[];
  /**
   * The running digest (`messagesDigest`, src/common/message-digest.ts) of every message before the new
   * user message (EMPTY_MESSAGES_DIGEST for none): the response cache's context, kept turn to turn.
   */
  historyDigest: string;
  /** The window state to persist on the conversation. */
  state: ConversationContextState;
  window: ContextWindowReport;
  /** The backend's prefix-reuse figure against the conversation's previous prompt. */
  backendReusableTokens: number;
}

/** What the turn records after the engine answered. */
export interface TurnContextReport {
  cache: MessageCacheReport;
  /** Tokens of the answer's content (its `Message.tokenCount`). */
  answerTokenCount?: number;
}

/**
 * Fits each turn's prompt into the context window and accounts for prefix reuse: counts tokens
 * (cached per message), lets the configured policy (CONTEXT_POLICY) move the window, assembles the
 * prompt, fingerprints it for prefix routing (extending the conversation's previous prompt chain,
 * PromptChainService), and compares it with the conversation's previous prompt.
 */
@Injectable()
export class ContextWindowService {
  constructor(
    @Inject(CONTEXT_POLICY) private readonly policy: ContextPolicy,
    private readonly assembler: PromptAssembler,
    private readonly tokenizer: TokenizerService,
    private readonly prefixReuse: PrefixReuseService,
    private readonly config: InferenceConfig,
    private readonly promptChains: PromptChainService,
  ) {}

  /**
   * @throws ContextLengthExceeded when the new message does not fit even with no history;
   *   Engine* errors when the engine's tokenizer fails
   */
  async prepare(request: WindowRequest): Promise<PreparedPrompt> {
    const { spec, render } = request;
    const { perMessage, generationPrompt } = await this.tokenizer.overheads();
    const head = this.assembler.renderHead(spec, render);
    const userContent = this.assembler.renderUserContent(spec, render);
    const uncounted = spec.history.filter((m) => m.tokenCount === null || m.tokenCount === undefined);
    const [headTokens, userTokenCount, counts] = await Promise.all([
      this.tokenizer.count(head),
      this.tokenizer.count(userContent),
      this.tokenizer.countAll(uncounted.map((m) => m.content)),
    ]);
    const historyTokenCounts: Record<number, number> = {};
    uncounted.forEach((m, i) => (historyTokenCounts[m.sequence] = counts[i]));
    /** Tokens of a history message's content: stored with it, or counted above. */
    const contentTokensOf = (m: (typeof spec.history)[number]): number =>
      m.tokenCount ?? historyTokenCounts[m.sequence];
    const history: WindowMessage[] = spec.history.map((m) => ({
      sequence: m.sequence,
      role: m.role,
      tokens: contentTokensOf(m) + perMessage,
    }));

    const before = request.state ?? initialContextState();
    const budget = this.config.INFERENCE_MAX_CONTEXT_TOKENS - request.reservedOutputTokens;
    const fit = await this.policy
      .fit({
        tenantId: request.tenantId,
        conversationId: request.conversationId,
        state: before,
        history,
        fixedTokens: headTokens + userTokenCount + 2 * perMessage + generationPrompt,
        budget,
        summaryTokens: async (summary) =>
          (await this.tokenizer.count(this.assembler.renderSummary(summary))) + perMessage,
      })
      .catch((e: unknown) => {
        throw e instanceof ContextLengthExceeded ? this.explainBudget(e, request.reservedOutputTokens) : e;
      });
    const state = fit.state;
    // Head and user content were rendered above to count them: assembled as they are, not rendered again.
    const kept = spec.history.filter((m) => m.sequence > state.droppedThroughSequence);
    const assembled = this.assembler.assemble({
      head,
      summary: fit.summary,
      history: kept,
      userContent,
      templateVersion: spec.templateVersion,
    });
    const contentTokens = this.assembler.contentTokens({
      head: headTokens,
      summary: fit.summary
        ? await this.tokenizer.count(this.assembler.renderSummary(fit.summary))
        : undefined,
      history: kept.map(contentTokensOf),
      userContent: userTokenCount,
    });
    const chain = await this.promptChains.build(
      request.conversationId,
      assembled.messages,
      contentTokens,
      request.cacheSalt,
    );
    const promptFingerprint = chain.tokens;
    const promptBlockHashes = chain.blockHashes;
    const reuse = await this.prefixReuse.record(
      request.conversationId,
      promptFingerprint.length,
      promptBlockHashes,
      chain.known,
    );
    return {
      messages: assembled.messages,
      templateVersion: assembled.templateVersion,
      userContent,
      userTokenCount,
      historyTokenCounts,
      promptFingerprint,
      promptBlockHashes,
      historyDigest: chain.messageDigests.at(-2) ?? EMPTY_MESSAGES_DIGEST,
      state,
      backendReusableTokens: reuse.reusableTokens,
      window: {
        policy: this.policy.name,
        budget,
        estimatedPromptTokens: promptFingerprint.length,
        droppedThroughSequence: state.droppedThroughSequence,
        ...(state.summaryThroughSequence !== undefined
          ? { summaryThroughSequence: state.summaryThroughSequence }
          : {}),
        compacted:
          state.compactions !== before.compactions ||
          state.droppedThroughSequence !== before.droppedThroughSequence,
        compactions: state.compactions,
      },
    };
  }

  /**
   * The turn's cache report (engine figures next to the backend's) and the answer's token count.
   * Never throws: a failed count leaves `answerTokenCount` undefined.
   */
  async report(prepared: PreparedPrompt, result: ChatResult): Promise<TurnContextReport> {
    const { promptTokens, cachedTokens } = result.usage;
    const answerTokenCount = await this.tokenizer.count(result.content).catch(() => undefined);
    return {
      answerTokenCount,
      cache: {
        cachedTokens,
        prefixReuse: promptTokens > 0 ? cachedTokens / promptTokens : 0,
        promptTokens,
        backendReusableTokens: prepared.backendReusableTokens,
        backendPrefixReuse: promptTokens > 0 ? Math.min(1, prepared.backendReusableTokens / promptTokens) : 0,
        window: prepared.window,
        ...(result.routing ? { router: result.routing } : {}),
      },
    };
  }

  /** The policy's error, saying what the budget is made of, so the caller knows to lower `maxTokens`. */
  private explainBudget(e: ContextLengthExceeded, reservedOutputTokens: number): ContextLengthExceeded {
    const window = this.config.INFERENCE_MAX_CONTEXT_TOKENS;
    return new ContextLengthExceeded(
      `${e.message} The window is ${window} tokens and ${reservedOutputTokens} are reserved for the answer ` +
        '(maxTokens): lower maxTokens or shorten the message.',
      { ...e.extensions, field: 'maxTokens', maxTokens: reservedOutputTokens, window },
    );
  }
}
