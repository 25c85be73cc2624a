import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { CachingModule } from '../caching/caching.module';
import { AgentsConfig } from '../config/agents.config';
import { ContextModule } from '../context/context.module';
import { InferenceModule } from '../inference/inference.module';
import { KnowledgeModule } from '../knowledge/knowledge.module';
import { AgentGraph } from './agent-graph.service';
import { AgentRegistry } from './agent-registry.service';
import { AgentsController } from './agents.controller';
import { AnswerService } from './answer.service';
import { AssistantAgent } from './assistant.agent';
import { KnowledgeAgent } from './knowledge.agent';
import { KnowledgeCacheInvalidation } from './knowledge-cache-invalidation';
import { AgentRouter } from './routing/agent-router.service';
import { EmbeddingIntentClassifier } from './routing/embedding-intent.classifier';
import { INTENT_CLASSIFIER, type IntentClassifier } from './routing/intent-classifier';
import { LlmIntentClassifier } from './routing/llm-intent.classifier';
import { SummarizerAgent } from './summarizer.agent';

/**
 * The agent graph: routing, agents and their prompt templates. Agents are `@Agent` providers
 * discovered at boot from any module (the built-in ones are listed here).
 */
@Module({
  imports: [DiscoveryModule, ContextModule, InferenceModule, CachingModule, KnowledgeModule],
  controllers: [AgentsController],
  providers: [
    AgentRegistry,
    AgentRouter,
    AgentGraph,
    AnswerService,
    EmbeddingIntentClassifier,
    LlmIntentClassifier,
    {
      provide: INTENT_CLASSIFIER,
      inject: [AgentsConfig, EmbeddingIntentClassifier, LlmIntentClassifier],
      useFactory: (
        config: AgentsConfig,
        embedding: IntentClassifier,
        llm: IntentClassifier,
      ): IntentClassifier => (config.AGENT_CLASSIFIER === 'llm' ? llm : embedding),
    },
    AssistantAgent,
    SummarizerAgent,
    KnowledgeAgent,
    KnowledgeCacheInvalidation,
  ],
  exports: [
    AgentGraph,
    AgentRegistry,
    AgentRouter,
    EmbeddingIntentClassifier,
    SummarizerAgent,
    KnowledgeAgent,
  ],
})
export class AgentsModule {}
