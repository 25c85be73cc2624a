import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsUUID } from 'class-validator';

export class CacheStatsQueryDto {
  @ApiPropertyOptional({ format: 'uuid', description: 'Only this conversation (of the caller’s tenant).' })
  @IsOptional()
  @IsUUID()
  conversationId?: string;

  @ApiPropertyOptional({
    enum: ['tenant', 'global'],
    default: 'tenant',
    description: '`global`: every tenant, plus the engine replicas’ own counters (admin keys only).',
  })
  @IsOptional()
  @IsIn(['tenant', 'global'])
  scope?: 'tenant' | 'global';
}

export class CacheStatsScopeDto {
  @ApiProperty({ enum: ['tenant', 'global'] }) kind!: 'tenant' | 'global';
  @ApiProperty({ format: 'uuid', description: 'The caller’s tenant.' }) tenantId!: string;
  @ApiPropertyOptional({ format: 'uuid' }) conversationId?: string;
}

export class CacheStatsDto {
  @ApiProperty({ type: CacheStatsScopeDto }) scope!: CacheStatsScopeDto;
  @ApiProperty({ format: 'date-time' }) generatedAt!: string;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description:
      'One section per cache layer. `prefix`: KV prefix reuse recorded on the turns (all turns and turns 2+: ' +
      'turns, promptTokens, cachedTokens, prefixReuse, backendReusableTokens, backendPrefixReuse; prefillReduction; ' +
      'windowMoves). `engine` (global scope): each replica’s scraped vLLM prefix-cache and LMCache counters and totals.',
    example: {
      prefix: {
        conversations: 3,
        all: { turns: 40, promptTokens: 81234, cachedTokens: 79100, prefixReuse: 0.974 },
        laterTurns: { turns: 37, promptTokens: 80900, cachedTokens: 79050, prefixReuse: 0.977 },
        prefillReduction: 0.974,
        windowMoves: 0,
      },
    },
  })
  layers!: Record<string, unknown>;
}
