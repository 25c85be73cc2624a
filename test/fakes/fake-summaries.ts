import type { ConversationSummary } from '../../src/context/summaries/conversation-summary.entity';
import type { SummariesService } from '../../src/context/summaries/summaries.service';
import type { SummarizeJobData } from '../../src/context/summaries/summaries.queue';

/**
 * Rolling summaries made on request, in memory, in place of SummariesService (no queue, no database):
 * `instant: false` never finishes one (the job is too slow). `requested` lists the boundaries asked for.
 */
export function fakeSummaries(instant: boolean): SummariesService & { requested: number[] } {
  const rows: ConversationSummary[] = [];
  const make = (data: SummarizeJobData): void => {
    if (rows.some((r) => r.throughSequence === data.throughSequence)) return;
    rows.push({
      throughSequence: data.throughSequence,
      content: `Summary of messages 1-${data.throughSequence}: topics a, b and c.`,
    } as ConversationSummary);
  };
  const requested: number[] = [];
  return {
    requested,
    latest: () => Promise.resolve(rows.at(-1) ?? null),
    request: (data: SummarizeJobData) => {
      requested.push(data.throughSequence);
      if (instant) make(data);
      return Promise.resolve();
    },
    requestAndWait: (data: SummarizeJobData) => {
      requested.push(data.throughSequence);
      if (instant) make(data);
      return Promise.resolve(instant);
    },
  } as unknown as SummariesService & { requested: number[] };
}
