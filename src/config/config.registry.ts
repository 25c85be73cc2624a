import { AdmissionConfig } from './admission.config';
import { AgentsConfig } from './agents.config';
import { AppConfig } from './app.config';
import { AuthConfig } from './auth.config';
import { CachingConfig, EmbeddingsConfig } from './caching.config';
import { ContextConfig } from './context.config';
import { DatabaseConfig } from './database.config';
import { HealthConfig } from './health.config';
import { IdempotencyConfig } from './idempotency.config';
import { InferenceConfig } from './inference.config';
import { KnowledgeConfig } from './knowledge.config';
import { LangfuseConfig } from './langfuse.config';
import { MetricsConfig } from './metrics.config';
import { ProcessConfig } from './process.config';
import { QueuesConfig } from './queues.config';
import { RedisConfig } from './redis.config';
import { UsageConfig } from './usage.config';

/**
 * Every configuration class, one per concern. A module that adds a concern adds its class here;
 * each is validated once at boot and injectable by its class.
 */
export const CONFIG_CLASSES = [
  AppConfig,
  DatabaseConfig,
  RedisConfig,
  InferenceConfig,
  LangfuseConfig,
  MetricsConfig,
  CachingConfig,
  EmbeddingsConfig,
  ContextConfig,
  AgentsConfig,
  QueuesConfig,
  ProcessConfig,
  AdmissionConfig,
  HealthConfig,
  KnowledgeConfig,
  AuthConfig,
  UsageConfig,
  IdempotencyConfig,
] as const;
