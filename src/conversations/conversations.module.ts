import { Module } from '@nestjs/common';
import { AgentsModule } from '../agents/agents.module';
import { AuthModule } from '../auth/auth.module';
import { IdempotencyModule } from '../idempotency/idempotency.module';
import { KnowledgeModule } from '../knowledge/knowledge.module';
import { ConversationsController } from './conversations.controller';
import { ConversationsService } from './conversations.service';
import { PrefixStatsSource } from './prefix-stats.source';
import { TurnLockService } from './turn-lock.service';

/** Conversations, messages and turns; the `prefix` section of the cache stats. */
@Module({
  imports: [AgentsModule, AuthModule, IdempotencyModule, KnowledgeModule],
  controllers: [ConversationsController],
  providers: [ConversationsService, TurnLockService, PrefixStatsSource],
  exports: [ConversationsService],
})
export class ConversationsModule {}
