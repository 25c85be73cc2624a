import { Injectable, Logger } from '@nestjs/common';
import { ContextConfig } from '../../config/context.config';
import {
  type ContextPolicy,
  dropThroughFor,
  fixedPartTooLong,
  type FitRequest,
  type FitResult,
  visibleTokens,
} from '../context-policy';
import type { ConversationSummary } from '../summaries/conversation-summary.entity';
import { SummariesService } from '../summaries/summaries.service';

/**
 * `summary`: like `compact`, the window moves only when the prompt would exceed the budget, but the
 * dropped turns are folded into a rolling summary placed right after the stable prefix.
 *
 * - Once the prompt passes CONTEXT_SUMMARY_TRIGGER of the budget, a `summaries` job is queued for the
 *   boundary a compaction would use (whole turns, down to CONTEXT_LOW_WATER), so the summary is
 *   usually ready before it is needed.
 * - At the compaction the newest summary replaces the dropped turns in one step (coarse: the summary
 *   then stays byte-identical until the next compaction). If none is ready, the turn waits up to
 *   CONTEXT_SUMMARY_WAIT_MS for it; failing that it drops turns like `compact`, keeping the previous
 *   summary, and the new one is used at the next compaction.
 */
@Injectable()
export class SummaryPolicy implements ContextPolicy {
  readonly name = 'summary';
  private readonly logger = new Logger(SummaryPolicy.name);

  constructor(
    private readonly config: ContextConfig,
    private readonly summaries: SummariesService,
  ) {}

  async fit(request: FitRequest): Promise<FitResult> {
    const { state, history, fixedTokens, budget, tenantId, conversationId } = request;
    const tooLong = fixedPartTooLong(request);
    if (tooLong) throw tooLong;
    const dropped = state.droppedThroughSequence;
    const current = state.summary;
    const currentTokens = current ? await request.summaryTokens(current) : 0;
    const total = fixedTokens + currentTokens + visibleTokens(history, dropped);
    const target = Math.floor(budget * this.config.CONTEXT_LOW_WATER);
    // Room a new summary will take, at most (its completion budget plus the heading and template).
    const summaryReserve = this.config.CONTEXT_SUMMARY_MAX_TOKENS + (await request.summaryTokens(''));
    const boundary = dropThroughFor(history, dropped, fixedTokens + summaryReserve, target);

    if (total <= budget) {
      if (total >= budget * this.config.CONTEXT_SUMMARY_TRIGGER && boundary !== null) {
        this.summaries
          .request({ tenantId, conversationId, throughSequence: boundary })
          .catch((e: unknown) => this.logger.warn(`could not queue a summary: ${String(e)}`));
      }
      return { state, summary: current };
    }

    const usable = async (s: ConversationSummary | null): Promise<boolean> =>
      s !== null &&
      s.throughSequence > dropped &&
      fixedTokens + (await request.summaryTokens(s.content)) + visibleTokens(history, s.throughSequence) <=
        budget;

    let ready = await this.summaries.latest(tenantId, conversationId);
    if (!(await usable(ready)) && boundary !== null) {
      await this.summaries.requestAndWait(
        { tenantId, conversationId, throughSequence: boundary },
        this.config.CONTEXT_SUMMARY_WAIT_MS,
      );
      ready = await this.summaries.latest(tenantId, conversationId);
    }
    if (ready !== null && (await usable(ready))) {
      return {
        state: {
          droppedThroughSequence: ready.throughSequence,
          summary: ready.content,
          summaryThroughSequence: ready.throughSequence,
          compactions: state.compactions + 1,
        },
        summary: ready.content,
      };
    }
    // No summary in time: drop turns as `compact` does and keep the previous summary.
    const through =
      dropThroughFor(history, dropped, fixedTokens + currentTokens, target) ??
      history.at(-1)?.sequence ??
      dropped;
    return {
      state: {
        droppedThroughSequence: Math.max(dropped, through),
        ...(current ? { summary: current, summaryThroughSequence: state.summaryThroughSequence } : {}),
        compactions: state.compactions + 1,
      },
      summary: current,
    };
  }
}
