import { CreateRequestContext } from '@mikro-orm/core';
import { EntityManager } from '@mikro-orm/postgresql';
import { Process, Processor } from '@nestjs/bull';
import { Inject, Logger } from '@nestjs/common';
import type { Job } from 'bull';
import { TenantSaltService } from '../../../auth/tenant-salt.service';
import { ContextConfig } from '../../../config/context.config';
import { CONVERSATION_SUMMARIZER, type ConversationSummarizer } from '../../conversation-summarizer';
import { TokenizerService } from '../../tokenizer.service';
import { ConversationSummary } from '../conversation-summary.entity';
import { SUMMARIES_QUEUE, SUMMARIZE_JOB, type SummarizeJobData } from '../summaries.queue';
import { SUMMARY_SOURCE, type SummarySource } from '../summary-source';

/** What a finished `summarize` job returns. */
export interface SummarizeJobResult {
  summaryId: string | null;
  throughSequence: number;
}

/**
 * Writes the rolling summary of messages 1..throughSequence: the previous summary plus the messages
 * after it, folded by the CONVERSATION_SUMMARIZER (the `summarizer` agent, with its prompt and
 * template version); the messages come from the SUMMARY_SOURCE (the conversations module). Runs in its
 * own EntityManager context. Engine errors fail the attempt; the
 * queue retries it with backoff (registerQueue defaults).
 */
@Processor(SUMMARIES_QUEUE)
export class SummarizeJob {
  private readonly logger = new Logger(SummarizeJob.name);

  constructor(
    private readonly em: EntityManager,
    @Inject(CONVERSATION_SUMMARIZER) private readonly summarizer: ConversationSummarizer,
    @Inject(SUMMARY_SOURCE) private readonly source: SummarySource,
    private readonly tokenizer: TokenizerService,
    private readonly salts: TenantSaltService,
    private readonly config: ContextConfig,
  ) {}

  @Process(SUMMARIZE_JOB)
  @CreateRequestContext()
  async handle(job: Job<SummarizeJobData>): Promise<SummarizeJobResult> {
    const { tenantId, conversationId, throughSequence } = job.data;
    const done = await this.em.findOne(ConversationSummary, {
      tenantId,
      conversationId,
      throughSequence: { $gte: throughSequence },
    });
    if (done) return { summaryId: done.id, throughSequence: done.throughSequence };
    const base = await this.em.findOne(
      ConversationSummary,
      { tenantId, conversationId, throughSequence: { $lt: throughSequence } },
      { orderBy: { throughSequence: 'desc' } },
    );
    const messages = await this.source.messagesToSummarize(
      tenantId,
      conversationId,
      base?.throughSequence ?? 0,
      throughSequence,
    );
    if (!messages) return { summaryId: null, throughSequence };
    const result = await this.summarizer.summarize({
      tenantId,
      conversationId,
      previousSummary: base?.content ?? null,
      messages,
      cacheSalt: this.salts.saltFor(tenantId),
      maxTokens: this.config.CONTEXT_SUMMARY_MAX_TOKENS,
    });
    const summary = this.em.create(ConversationSummary, {
      tenantId,
      conversationId,
      throughSequence,
      content: result.content,
      tokenCount: await this.tokenizer.count(result.content),
      templateVersion: result.templateVersion,
      model: result.model,
    });
    await this.em.flush();
    this.logger.log(`summarized conversation ${conversationId} through message ${throughSequence}`);
    return { summaryId: summary.id, throughSequence };
  }
}
