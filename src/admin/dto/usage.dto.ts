import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsISO8601, IsOptional, IsString, IsUUID, MaxLength } from 'class-validator';

export const USAGE_GROUPS = ['day', 'key', 'model', 'endpoint'] as const;

/** Query of `GET /v1/usage`. */
export class UsageQueryDto {
  @ApiPropertyOptional({
    format: 'date-time',
    description: 'Start (inclusive, ISO 8601); default the first instant of the current UTC month.',
  })
  @IsOptional()
  @IsISO8601({ strict: true })
  from?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'End (exclusive, ISO 8601); default now.' })
  @IsOptional()
  @IsISO8601({ strict: true })
  to?: string;

  @ApiPropertyOptional({ description: 'Tenant id or name (platform admin; others see only their own).' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  tenant?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'Only this API key.' })
  @IsOptional()
  @IsUUID()
  key?: string;

  @ApiPropertyOptional({ description: 'Only this model.' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  model?: string;

  @ApiPropertyOptional({ enum: USAGE_GROUPS, default: 'day' })
  @IsOptional()
  @IsIn(USAGE_GROUPS)
  group?: (typeof USAGE_GROUPS)[number];
}

/** Summed counters: tokens, and USD from the ledger's prices. */
export class UsageCountersDto {
  @ApiProperty() requests!: number;
  @ApiProperty({ description: 'Prompt tokens the engine or provider processed.' }) promptTokens!: number;
  @ApiProperty({
    description: 'Of those, tokens served from the engine prefix cache or provider prompt cache.',
  })
  cachedTokens!: number;
  @ApiProperty() completionTokens!: number;
  @ApiProperty({ description: 'USD.' }) cost!: number;
  @ApiProperty({
    description: 'USD the cache layers saved (a response-cache hit priced as the miss it replaced).',
  })
  costAvoided!: number;
}

/** One group: its field (`day`, `keyId` + `keyName`, `model` or `endpoint`) and its counters. */
export class UsageRowDto extends UsageCountersDto {
  @ApiPropertyOptional({ example: '2026-11-01', description: 'UTC day (group=day).' }) day?: string;
  @ApiPropertyOptional({ format: 'uuid', nullable: true, description: 'group=key; null = no key.' })
  keyId?: string | null;
  @ApiPropertyOptional({ type: String, nullable: true, description: 'group=key.' }) keyName?: string | null;
  @ApiPropertyOptional({ description: 'group=model.' }) model?: string;
  @ApiPropertyOptional({ description: 'group=endpoint: turn, chat.completions, embeddings, ingestion.' })
  endpoint?: string;
}

/** `GET /v1/usage`. */
export class UsageReportDto {
  @ApiProperty({ format: 'date-time' }) from!: string;
  @ApiProperty({ format: 'date-time' }) to!: string;
  @ApiProperty({ enum: USAGE_GROUPS }) group!: string;
  @ApiProperty({ type: [UsageRowDto] }) data!: UsageRowDto[];
  @ApiProperty({ type: UsageCountersDto }) totals!: UsageCountersDto;
}
