import { IsString, Matches } from 'class-validator';

/** Redis: response cache, turn locks and Bull queues share one server. */
export class RedisConfig {
  @Matches(/^rediss?:\/\//, { message: 'must be a redis:// or rediss:// URL' })
  REDIS_URL = 'redis://127.0.0.1:6379';
  /** Prefix of every key kvchat writes (several deployments can share one Redis). */
  @IsString() REDIS_KEY_PREFIX = 'kvchat:';
}
