import { BullModule } from '@nestjs/bull';
import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { ContextConfig } from '../config/context.config';
import { InferenceModule } from '../inference/inference.module';
import { CONTEXT_POLICY, type ContextPolicy } from './context-policy';
import { CONTEXT_POLICIES } from './context-policy.registry';
import { ContextWindowService } from './context-window.service';
import { PrefixReuseService } from './prefix-reuse.service';
import { PromptAssembler } from './prompt-assembler';
import { SummarizeJob } from './summaries/jobs/summarize.job';
import { SummariesService } from './summaries/summaries.service';
import { SUMMARIES_QUEUE } from './summaries/summaries.queue';
import { TokenizerService } from './tokenizer.service';

/** Prompt assembly, token counting, context-window policies, prefix-reuse accounting and rolling summaries. */
@Module({
  imports: [
    InferenceModule,
    AuthModule,
    BullModule.registerQueue({
      name: SUMMARIES_QUEUE,
      defaultJobOptions: { attempts: 2, removeOnComplete: 1000 },
    }),
  ],
  providers: [
    PromptAssembler,
    TokenizerService,
    PrefixReuseService,
    SummariesService,
    SummarizeJob,
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
