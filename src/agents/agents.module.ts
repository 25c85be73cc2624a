import { Module } from '@nestjs/common';
import { CachingModule } from '../caching/caching.module';
import { ContextModule } from '../context/context.module';
import { InferenceModule } from '../inference/inference.module';
import { AgentGraph } from './agent-graph.service';
import { AnswerService } from './answer.service';

/** The agent graph: routing, agents and their prompt templates. */
@Module({
  imports: [ContextModule, InferenceModule, CachingModule],
  providers: [AgentGraph, AnswerService],
  exports: [AgentGraph],
})
export class AgentsModule {}
