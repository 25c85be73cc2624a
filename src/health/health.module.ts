import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { InferenceModule } from '../inference/inference.module';
import { EngineHealthIndicator } from './engine.health';
import { HealthController } from './health.controller';
import { QueuesHealthIndicator } from './queues.health';
import { RedisHealthIndicator } from './redis.health';

/** Terminus liveness and readiness. */
@Module({
  imports: [TerminusModule.forRoot({ errorLogStyle: 'pretty' }), InferenceModule],
  controllers: [HealthController],
  providers: [RedisHealthIndicator, EngineHealthIndicator, QueuesHealthIndicator],
})
export class HealthModule {}
