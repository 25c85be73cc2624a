import { InjectQueue } from '@nestjs/bull';
import { EntityManager } from '@mikro-orm/postgresql';
import { Injectable, Logger } from '@nestjs/common';
import type { Queue } from 'bull';
import { ConversationSummary } from './conversation-summary.entity';
import { SUMMARIES_QUEUE, SUMMARIZE_JOB, type SummarizeJobData, summarizeJobId } from './summaries.queue';

/** Rolling summaries: queue their production, read the latest one. */
@Injectable()
export class SummariesService {
  private readonly logger = new Logger(SummariesService.name);

  constructor(
    @InjectQueue(SUMMARIES_QUEUE) private readonly queue: Queue<SummarizeJobData>,
    private readonly em: EntityManager,
  ) {}

  /** The summary covering the most messages of the conversation, or null. */
  async latest(tenantId: string, conversationId: string): Promise<ConversationSummary | null> {
    return this.em
      .fork()
      .findOne(ConversationSummary, { tenantId, conversationId }, { orderBy: { throughSequence: 'desc' } });
  }

  /** Queues a summary of messages 1..throughSequence (once per boundary; a second call is a no-op). */
  async request(data: SummarizeJobData): Promise<void> {
    await this.queue.add(SUMMARIZE_JOB, data, { jobId: summarizeJobId(data) });
  }

  /**
   * Queues the summary and waits up to `timeoutMs` for it.
   * @returns true when the job finished in time (its summary is stored), false otherwise (never throws)
   */
  async requestAndWait(data: SummarizeJobData, timeoutMs: number): Promise<boolean> {
    try {
      const job = await this.queue.add(SUMMARIZE_JOB, data, { jobId: summarizeJobId(data) });
      if (timeoutMs <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      try {
        return await Promise.race([job.finished().then(() => true), timeout]);
      } finally {
        clearTimeout(timer);
      }
    } catch (e) {
      this.logger.warn(
        `summary of ${data.conversationId} through ${data.throughSequence} failed: ${String(e)}`,
      );
      return false;
    }
  }
}
