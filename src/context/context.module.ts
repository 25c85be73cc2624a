import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { ContextConfig } from '../config/context.config';
import { InferenceModule } from '../inference/inference.module';
import { registerQueue } from '../queues/queue-options';
import { queueProcessor } from '../queues/queue-processor';
import { CONTEXT_POLICY, type ContextPolicy } from './context-policy';
import { CONTEXT_POLICIES } from './context-policy.registry';
import { ContextWindowService } from './context-window.service';
import { PrefixReuseService } from './prefix-reuse.service';
import { PromptAssembler } from './prompt-assembler';
import { PromptChainService } from './prompt-chain.service';
import { SummarizeJob } from './summaries/jobs/summarize.job';
import { SummariesService } from './summaries/summaries.service';
import { SUMMARIES_QUEUE } from './summaries/summaries.queue';
import { TokenizerService } from './tokenizer.service';

/**
 * Prompt assembly, token counting, context-window policies, prefix-reuse accounting and rolling
 * summaries. The `summaries` job needs a CONVERSATION_SUMMARIZER from outside (the agents layer binds
 * it, src/agents/conversation-summarizer.module.ts).
 */
@Module({
  imports: [
    InferenceModule,
    AuthModule,
    // The shared job defaults (bounded attempts, exponential backoff, failed jobs kept) fit: a
    // summary is wanted within CONTEXT_SUMMARY_WAIT_MS, and the job is idempotent per boundary.
    registerQueue(SUMMARIES_QUEUE),
  ],
  providers: [
    PromptAssembler,
    TokenizerService,
    PrefixReuseService,
    PromptChainService,
    SummariesService,
    queueProcessor(SummarizeJob),
    ContextWindowService,
    ...Object.values(CONTEXT_POLICIES),
    {
      provide: CONTEXT_POLICY,
      // Injecting every policy (not ModuleRef.get) makes Nest construct them before this factory runs.
      inject: [ContextConfig, ...Object.values(CONTEXT_POLICIES)],
      useFactory: (config: ContextConfig, ...policies: ContextPolicy[]): ContextPolicy =>
        policies[Object.keys(CONTEXT_POLICIES).indexOf(config.CONTEXT_POLICY)],
    },
  ],
  exports: [PromptAssembler, TokenizerService, ContextWindowService, SummariesService],
})
export class ContextModule {}
