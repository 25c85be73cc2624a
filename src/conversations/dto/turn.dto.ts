import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  IsBoolean,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  Max,
  Min,
  MinLength,
  ValidateNested,
} from 'class-validator';
import { RouteDecisionDto } from '../../agents/dto/route-decision.dto';
import { CacheControlDto } from '../../caching/dto/cache-control.dto';
import { CacheReportDto, MessageDto, TimingsDto, UsageDto } from './message.dto';

/** Body of `POST /v1/conversations/:id/turns`. */
export class PostTurnDto {
  @ApiProperty({
    description: 'The user message. Longer than MAX_MESSAGE_CHARS is a 413.',
    example: 'What is a KV cache?',
  })
  @IsString()
  @MinLength(1)
  content!: string;

  @ApiPropertyOptional({
    description:
      'Stream Server-Sent Events (also with `Accept: text/event-stream`): a 200 `text/event-stream`.',
    default: false,
    example: false,
  })
  @IsOptional()
  @IsBoolean()
  stream?: boolean;

  @ApiPropertyOptional({
    description:
      'Completion budget, tokens (default INFERENCE_DEFAULT_MAX_TOKENS). It is reserved in the context window: ' +
      'the prompt must fit in INFERENCE_MAX_CONTEXT_TOKENS minus this.',
    minimum: 1,
    maximum: 32768,
    example: 256,
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(32768)
  maxTokens?: number;

  @ApiPropertyOptional({ description: 'Sampling temperature.', minimum: 0, maximum: 2, example: 0.7 })
  @IsOptional()
  @IsNumber()
  @Min(0)
  @Max(2)
  temperature?: number;

  @ApiPropertyOptional({
    type: CacheControlDto,
    description:
      'Response-cache control for this turn. A turn answered from the cache reports `cache.response`.',
    example: { mode: 'default', maxAgeSeconds: 3600 },
  })
  @IsOptional()
  @ValidateNested()
  @Type(() => CacheControlDto)
  cache?: CacheControlDto;
}

/** A completed turn: both stored messages and the answer's usage, timings, cache report and route. */
export class TurnResponseDto {
  @ApiProperty({ format: 'uuid' }) conversationId!: string;
  @ApiProperty({ type: MessageDto }) userMessage!: MessageDto;
  @ApiProperty({ type: MessageDto }) assistantMessage!: MessageDto;
  @ApiProperty({ type: UsageDto }) usage!: UsageDto;
  @ApiProperty({ type: TimingsDto }) timings!: TimingsDto;
  @ApiProperty({ type: CacheReportDto }) cache!: CacheReportDto;
  @ApiProperty({ type: () => RouteDecisionDto, description: 'How the turn was routed to its agent.' })
  route!: Record<string, unknown>;
}
