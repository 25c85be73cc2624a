import { join } from 'node:path';
import { CreateRequestContext } from '@mikro-orm/core';
import { EntityManager } from '@mikro-orm/postgresql';
import { Process, Processor } from '@nestjs/bull';
import { Logger } from '@nestjs/common';
import type { Job } from 'bull';
import { TenantSaltService } from '../../../auth/tenant-salt.service';
import { ContextConfig } from '../../../config/context.config';
import { Conversation } from '../../../conversations/conversation.entity';
import { Message } from '../../../conversations/message.entity';
import { InferenceService } from '../../../inference/inference.service';
import { loadPromptTemplate } from '../../prompt-template';
import { TokenizerService } from '../../tokenizer.service';
import { ConversationSummary } from '../conversation-summary.entity';
import { SUMMARIES_QUEUE, SUMMARIZE_JOB, type SummarizeJobData } from '../summaries.queue';

/** What a finished `summarize` job returns. */
export interface SummarizeJobResult {
  summaryId: string | null;
  throughSequence: number;
}

/**
 * Writes the rolling summary of messages 1..throughSequence: the previous summary plus the messages
 * after it, folded by the engine with the rolling-summary template (src/context/templates/rolling-summary.md).
 * Runs in its own EntityManager context. Issue 5 moves the call into the `summarizer` agent.
 */
@Processor(SUMMARIES_QUEUE)
export class SummarizeJob {
  private readonly logger = new Logger(SummarizeJob.name);
  private readonly template = loadPromptTemplate(
    join(__dirname, '..', '..', 'templates', 'rolling-summary.md'),
  );

  constructor(
    private readonly em: EntityManager,
    private readonly inference: InferenceService,
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
    const conversation = await this.em.findOne(Conversation, { id: conversationId, tenantId });
    if (!conversation) return { summaryId: null, throughSequence };

    const base = await this.em.findOne(
      ConversationSummary,
      { tenantId, conversationId, throughSequence: { $lt: throughSequence } },
      { orderBy: { throughSequence: 'desc' } },
    );
    const messages = await this.em.find(
      Message,
      {
        tenantId,
        conversationId,
        status: 'complete',
        sequence: { $gt: base?.throughSequence ?? 0, $lte: throughSequence },
      },
      { orderBy: { sequence: 'asc' } },
    );
    const transcript = messages.map((m) => `${m.role}: ${m.content}`).join('\n\n');
    const result = await this.inference.chat({
      messages: [
        { role: 'system', content: this.template.text },
        {
          role: 'user',
          content: `Previous summary:\n${base?.content ?? '(none)'}\n\nMessages that follow it:\n${transcript}`,
        },
      ],
      maxTokens: this.config.CONTEXT_SUMMARY_MAX_TOKENS,
      temperature: 0,
      cacheSalt: this.salts.saltFor(tenantId),
      routingKey: conversationId,
    });
    const summary = this.em.create(ConversationSummary, {
      tenantId,
      conversationId,
      throughSequence,
      content: result.content.trim(),
      tokenCount: await this.tokenizer.count(result.content.trim()),
      templateVersion: `${this.template.name}@${this.template.version}`,
      model: result.model,
    });
    await this.em.flush();
    this.logger.log(`summarized conversation ${conversationId} through message ${throughSequence}`);
    return { summaryId: summary.id, throughSequence };
  }
}
