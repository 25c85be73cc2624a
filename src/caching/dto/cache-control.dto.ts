import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsInt, IsOptional, Min } from 'class-validator';
import { CACHE_MODES, type CacheMode } from '../response-cache.types';

/** Per-request response-cache control (`cache` in a turn or a chat completion request). */
export class CacheControlDto {
  @ApiPropertyOptional({
    enum: CACHE_MODES,
    default: 'default',
    description:
      '`default`: answer from the cache when possible and store fresh answers; `no-cache`: always ask the ' +
      'engine, store the fresh answer; `no-store`: answer from the cache when possible, never store; ' +
      '`bypass`: neither.',
  })
  @IsOptional()
  @IsIn(CACHE_MODES)
  mode?: CacheMode;

  @ApiPropertyOptional({
    minimum: 0,
    description: 'Serve only cached answers at most this old, seconds (never beyond the configured TTL).',
    example: 3600,
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  maxAgeSeconds?: number;
}
