import { Module } from '@nestjs/common';
import { AgentsModule } from '../agents/agents.module';
import { AuthModule } from '../auth/auth.module';
import { IdempotencyModule } from '../idempotency/idempotency.module';
import { KnowledgeModule } from '../knowledge/knowledge.module';
import { registerQueue } from '../queues/queue-options';
import { queueProcessor } from '../queues/queue-processor';
import { InferenceModule } from '../inference/inference.module';
import { ConversationsController } from './conversations.controller';
import { ConversationsService } from './conversations.service';
import { InFlightTurns } from './in-flight-turns';
import { TurnSweepJob } from './jobs/turn-sweep.job';
import { PrefixStatsSource } from './prefix-stats.source';
import { TurnBilling } from './turn-billing.service';
import { TurnLockService } from './turn-lock.service';
import { TurnSweeper } from './turn-sweeper';
import { TURNS_QUEUE } from './turns.queue';

/**
 * Conversations, messages and turns; the `prefix` section of the cache stats; the record of turns in
 * flight and the sweeper that stores interrupted ones (its job runs only where jobs run).
 */
@Module({
  imports: [
    AgentsModule,
    AuthModule,
    IdempotencyModule,
    KnowledgeModule,
    InferenceModule,
    // A sweep is cheap and repeats: keep no completed job, and no retry of a failed one (the next sweep is one).
    registerQueue(TURNS_QUEUE, { attempts: 1, removeOnComplete: true }),
  ],
  controllers: [ConversationsController],
  providers: [
    ConversationsService,
    TurnLockService,
    TurnBilling,
    PrefixStatsSource,
    InFlightTurns,
    TurnSweeper,
    queueProcessor(TurnSweepJob),
  ],
  exports: [ConversationsService, TurnSweeper, InFlightTurns],
})
export class ConversationsModule {}
