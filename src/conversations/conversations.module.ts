import { Module } from '@nestjs/common';
import { AgentsModule } from '../agents/agents.module';
import { AuthModule } from '../auth/auth.module';
import { IdempotencyModule } from '../idempotency/idempotency.module';
import { InferenceModule } from '../inference/inference.module';
import { ConversationsController } from './conversations.controller';
import { ConversationsService } from './conversations.service';
import { PrefixStatsSource } from './prefix-stats.source';
import { TurnBilling } from './turn-billing.service';
import { TurnLockService } from './turn-lock.service';

/** Conversations, messages and turns; the `prefix` section of the cache stats. */
@Module({
  imports: [AgentsModule, AuthModule, IdempotencyModule, InferenceModule],
  controllers: [ConversationsController],
  providers: [ConversationsService, TurnLockService, TurnBilling, PrefixStatsSource],
  exports: [ConversationsService],
})
export class ConversationsModule {}
