import { Injectable } from '@nestjs/common';
import { type ContextPolicy, type FitRequest, type FitResult, fixedPartTooLong } from '../context-policy';

/**
 * `sliding`: the common chat-backend behaviour, kept as a baseline — send the most recent messages
 * that fit the budget. Once the window is full, every turn drops the oldest message(s) again, so the
 * prompt's prefix after the system prompt changes on every turn and the engine recomputes the whole
 * history each time.
 */
@Injectable()
export class SlidingWindowPolicy implements ContextPolicy {
  readonly name = 'sliding';

  fit(request: FitRequest): Promise<FitResult> {
    const { state, history, fixedTokens, budget } = request;
    const tooLong = fixedPartTooLong(request);
    if (tooLong) return Promise.reject(tooLong);
    let sum = fixedTokens;
    let keepFrom = history.length;
    while (keepFrom > 0 && sum + history[keepFrom - 1].tokens <= budget) {
      keepFrom--;
      sum += history[keepFrom].tokens;
    }
    // The window starts at a user message (chat templates expect user/assistant alternation).
    while (keepFrom < history.length && history[keepFrom].role !== 'user') keepFrom++;
    const through = Math.max(
      state.droppedThroughSequence,
      keepFrom === 0 ? 0 : history[keepFrom - 1].sequence,
    );
    const moved = through !== state.droppedThroughSequence;
    return Promise.resolve({
      state: { droppedThroughSequence: through, compactions: state.compactions + (moved ? 1 : 0) },
    });
  }
}
