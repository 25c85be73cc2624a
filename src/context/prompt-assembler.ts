import { Injectable } from '@nestjs/common';
import { ContextConfig } from '../config/context.config';
import type { ChatMessage } from '../inference/inference.types';
import type { AssembledPrompt, HistoryMessage, PromptRenderContext, PromptSpec } from './prompt.types';

/** A prompt's parts once rendered: `renderHead`, the optional summary text, the history, `renderUserContent`. */
export interface RenderedPromptParts {
  head: string;
  summary?: string;
  history: readonly Pick<HistoryMessage, 'role' | 'content'>[];
  userContent: string;
  templateVersion: string;
}

/** Heading of the rolling summary's system message. */
export const SUMMARY_HEADING = 'Summary of the earlier conversation:';

/**
 * Renders a PromptSpec as chat messages so that the longest possible token prefix repeats between
 * turns (vLLM automatic prefix caching reuses KV blocks only for an identical token prefix):
 *
 * `[system: stable prefix] [system: rolling summary]? [history, exactly as sent] [user: date? + volatile context? + message]`
 *
 * Nothing that changes per turn goes before the history: the date and retrieved passages ride with
 * the new user message, and that message is later replayed exactly as sent (`userContent`), so the
 * next turn's prompt starts with this turn's prompt and answer.
 *
 * PROMPT_LAYOUT=naive reproduces what a typical backend does (clock and user name at the top of the
 * system prompt): every turn then starts with different tokens and nothing can be reused. It exists
 * as the benchmark baseline.
 */
@Injectable()
export class PromptAssembler {
  constructor(private readonly config: ContextConfig) {}

  /** The first system message: the stable prefix (or, in the naive layout, clock + user name + prefix). */
  renderHead(spec: Pick<PromptSpec, 'stablePrefix'>, context: PromptRenderContext): string {
    if (this.config.PROMPT_LAYOUT === 'naive') {
      const user = context.userName ? `\nThe user's name is ${context.userName}.` : '';
      return `Current date and time: ${context.now.toISOString()}.${user}\n\n${spec.stablePrefix}`;
    }
    return spec.stablePrefix;
  }

  /** The system message carrying the rolling summary. */
  renderSummary(summary: string): string {
    return `${SUMMARY_HEADING}\n${summary}`;
  }

  /** The new user message as sent: `Date: YYYY-MM-DD` (stable layout), volatile context, then the message. */
  renderUserContent(
    spec: Pick<PromptSpec, 'volatileContext' | 'userMessage'>,
    context: PromptRenderContext,
  ): string {
    const parts: string[] = [];
    if (this.config.PROMPT_LAYOUT === 'stable' && this.config.PROMPT_DATE_IN_TAIL) {
      parts.push(`Date: ${context.now.toISOString().slice(0, 10)}`);
    }
    if (spec.volatileContext) parts.push(spec.volatileContext);
    parts.push(spec.userMessage);
    return parts.join('\n\n');
  }

  /** Renders the whole prompt. `spec.history` is sent as given: fit it to the window first. */
  build(spec: PromptSpec, context: PromptRenderContext = { now: new Date() }): AssembledPrompt {
    return this.assemble({
      head: this.renderHead(spec, context),
      summary: spec.summary,
      history: spec.history,
      userContent: this.renderUserContent(spec, context),
      templateVersion: spec.templateVersion,
    });
  }

  /**
   * Puts already rendered parts in prompt order (what `build` does after rendering), so a caller that
   * rendered the head and the user content to count their tokens does not render them again.
   */
  assemble(parts: RenderedPromptParts): AssembledPrompt {
    const messages = promptOrder<ChatMessage>(
      { role: 'system', content: parts.head },
      parts.summary ? { role: 'system', content: this.renderSummary(parts.summary) } : undefined,
      parts.history.map((m) => ({ role: m.role, content: m.content })),
      { role: 'user', content: parts.userContent },
    );
    return { messages, templateVersion: parts.templateVersion, userContent: parts.userContent };
  }

  /**
   * The content tokens (no template) of each message `assemble` lays out, in its order, from the tokens of
   * each part: what PromptChainService.build takes beside the messages.
   */
  contentTokens(tokens: PromptPartTokens): number[] {
    return promptOrder(tokens.head, tokens.summary, tokens.history, tokens.userContent);
  }
}

/** Content tokens of each rendered part of a prompt (`RenderedPromptParts`), tokens; `summary` only when there is one. */
export interface PromptPartTokens {
  head: number;
  summary?: number;
  history: readonly number[];
  userContent: number;
}

/** The prompt's order, for its messages and for anything laid out beside them: head, summary if any, history, user. */
function promptOrder<T>(head: T, summary: T | undefined, history: readonly T[], user: T): T[] {
  return [head, ...(summary === undefined ? [] : [summary]), ...history, user];
}
