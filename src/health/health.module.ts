import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { InferenceModule } from '../inference/inference.module';
import { EngineHealthIndicator } from './engine.health';
import { HealthController } from './health.controller';
import { HealthMetrics } from './health.metrics';
import { LifecycleHealthIndicator } from './lifecycle.health';
import { QueuesHealthIndicator } from './queues.health';
import { RedisHealthIndicator } from './redis.health';

/** Terminus liveness and readiness, and the drain state as a metric. */
@Module({
  imports: [TerminusModule.forRoot({ errorLogStyle: 'pretty' }), InferenceModule],
  controllers: [HealthController],
  providers: [
    RedisHealthIndicator,
    EngineHealthIndicator,
    QueuesHealthIndicator,
    LifecycleHealthIndicator,
    HealthMetrics,
  ],
})
export class HealthModule {}
