import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { InferenceModule } from '../inference/inference.module';
import { CacheStatsController } from './cache-stats.controller';
import { CacheStatsService } from './cache-stats.service';
import { EngineStatsSource } from './engine-stats.source';

/**
 * `GET /v1/cache/stats`: one section per cache layer. Sources are discovered by `@CacheStatsSection()`
 * anywhere in the app; the engine section lives here, the KV prefix section in the conversations module
 * (it reads the messages).
 */
@Module({
  imports: [DiscoveryModule, InferenceModule],
  controllers: [CacheStatsController],
  providers: [CacheStatsService, EngineStatsSource],
})
export class CacheStatsModule {}
