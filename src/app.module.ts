import { type DynamicModule, Module, type ModuleMetadata, RequestMethod } from '@nestjs/common';
import { AdminModule } from './admin/admin.module';
import { AgentsModule } from './agents/agents.module';
import { ConversationSummarizerModule } from './agents/conversation-summarizer.module';
import { AuthModule } from './auth/auth.module';
import { CacheStatsModule } from './caching/cache-stats.module';
import { CachingModule } from './caching/caching.module';
import { CompletionsModule } from './completions/completions.module';
import { type Env } from './config/config.loader';
import { KvchatConfigModule } from './config/config.module';
import { ConversationPortsModule } from './conversations/conversation-ports.module';
import { ConversationsModule } from './conversations/conversations.module';
import { DatabaseModule } from './database/database.module';
import { EmbeddedEngineModule } from './embedded-engine.module';
import { ENTITIES } from './entities';
import { HealthModule } from './health/health.module';
import { KnowledgeModule } from './knowledge/knowledge.module';
import { LifecycleModule } from './lifecycle/lifecycle.module';
import { LoggingModule } from './observability/logging.module';
import { ObservabilityModule } from './observability/observability.module';
import { QueuesModule } from './queues/queues.module';
import { RedisModule } from './redis/redis.module';
import { UsageModule } from './usage/usage.module';

/**
 * The whole service. `env` overrides process.env (tests, benchmarks); `extra` modules are added
 * last (e.g. a module listing more `@Agent` providers, which are discovered like the built-in ones).
 */
@Module({})
export class AppModule {
  static forRoot(env: Env = {}, extra: NonNullable<ModuleMetadata['imports']> = []): DynamicModule {
    return {
      module: AppModule,
      imports: [
        KvchatConfigModule.forRoot(env),
        LoggingModule,
        LifecycleModule,
        EmbeddedEngineModule,
        ObservabilityModule,
        RedisModule,
        // Routes that use no entity through the request's EntityManager (the stateless completions; a turn,
        // which forks its own and writes with SQL): no EntityManager fork per request.
        DatabaseModule.forRoot(ENTITIES, [
          { path: 'v1/chat/completions', method: RequestMethod.POST },
          { path: 'v1/conversations/:id/turns', method: RequestMethod.POST },
        ]),
        QueuesModule,
        UsageModule.forRoot(),
        AuthModule,
        AgentsModule,
        ConversationSummarizerModule,
        ConversationsModule,
        ConversationPortsModule,
        CachingModule,
        CacheStatsModule,
        CompletionsModule,
        KnowledgeModule,
        AdminModule,
        HealthModule,
        ...extra,
      ],
    };
  }
}
