import { Injectable } from '@nestjs/common';
import { ContextConfig } from '../../config/context.config';
import {
  type ContextPolicy,
  dropThroughFor,
  fixedPartTooLong,
  type FitRequest,
  type FitResult,
  visibleTokens,
} from '../context-policy';

/**
 * `compact` (the default): while the prompt fits the budget, nothing moves — the history is only
 * appended to, so every turn's prompt starts with the previous turn's prompt and answer. When it
 * would not fit, whole old turns are dropped at once, down to CONTEXT_LOW_WATER of the budget. The
 * prefix after the stable part changes only at that compaction (one full prefill), then the
 * conversation grows cached again for many turns.
 */
@Injectable()
export class CompactPolicy implements ContextPolicy {
  readonly name = 'compact';

  constructor(private readonly config: ContextConfig) {}

  fit(request: FitRequest): Promise<FitResult> {
    const { state, history, fixedTokens, budget } = request;
    const tooLong = fixedPartTooLong(request);
    if (tooLong) return Promise.reject(tooLong);
    const dropped = state.droppedThroughSequence;
    if (fixedTokens + visibleTokens(history, dropped) <= budget && !state.summary)
      return Promise.resolve({ state });
    const target = Math.floor(budget * this.config.CONTEXT_LOW_WATER);
    const through =
      dropThroughFor(history, dropped, fixedTokens, target) ?? history.at(-1)?.sequence ?? dropped;
    return Promise.resolve({
      state: { droppedThroughSequence: Math.max(dropped, through), compactions: state.compactions + 1 },
    });
  }
}
