import type { PrefixReuse, PrefixReuseService } from '../../src/context/prefix-reuse.service';

/**
 * PrefixReuseService in memory: remembers each conversation's last prompt and answers the shared
 * leading tokens (not block aligned: a spec checks that the figure is carried, not how it is hashed).
 */
export class FakePrefixReuse implements Pick<PrefixReuseService, 'record'> {
  readonly calls: { conversationId: string; promptTokens: number }[] = [];
  private readonly last = new Map<string, readonly number[]>();

  record(conversationId: string, promptTokenIds: readonly number[]): Promise<PrefixReuse> {
    this.calls.push({ conversationId, promptTokens: promptTokenIds.length });
    const previous = this.last.get(conversationId);
    this.last.set(conversationId, [...promptTokenIds]);
    if (!previous) return Promise.resolve({ reusableTokens: 0, previousPromptTokens: null });
    let shared = 0;
    while (
      shared < previous.length &&
      shared < promptTokenIds.length &&
      previous[shared] === promptTokenIds[shared]
    )
      shared++;
    return Promise.resolve({ reusableTokens: shared, previousPromptTokens: previous.length });
  }
}
