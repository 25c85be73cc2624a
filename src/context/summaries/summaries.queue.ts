/** Bull queue of rolling-summary jobs. */
export const SUMMARIES_QUEUE = 'summaries';

/** Job name: summarize a conversation through a message sequence. */
export const SUMMARIZE_JOB = 'summarize';

/** Data of a `summarize` job: fold messages 1..throughSequence into one summary. */
export interface SummarizeJobData {
  tenantId: string;
  conversationId: string;
  throughSequence: number;
}

/** One job per (conversation, boundary): queueing it twice is a no-op. */
export function summarizeJobId(data: Pick<SummarizeJobData, 'conversationId' | 'throughSequence'>): string {
  return `summarize:${data.conversationId}:${data.throughSequence}`;
}
