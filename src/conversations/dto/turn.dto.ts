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
import { CacheControlDto } from '../../caching/dto/cache-control.dto';
import { MessageDto } from './message.dto';

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

/** Tokens and USD one cache layer saved. */
export class LayerSavingsDto {
  @ApiProperty({ description: 'Tokens the layer spared the engine or provider.' }) tokens!: number;
  @ApiProperty({ description: 'USD, at the model price of the usage ledger (0 without a price).' })
  cost!: number;
}

/**
 * What each cache layer saved a turn, and what it cost: the turn's usage-ledger record, as billing sees
 * it. A response-cache hit is priced as the miss it replaced.
 */
export class TurnSavingsDto {
  @ApiProperty({ description: 'What the turn cost, USD.' }) cost!: number;
  @ApiProperty({ description: 'USD the cache layers saved (response cache + prefix/prompt caching).' })
  costAvoided!: number;
  @ApiProperty({ enum: ['exact', 'semantic', 'engine-prefix', 'none'], description: 'Layer that answered.' })
  cacheLayer!: 'exact' | 'semantic' | 'engine-prefix' | 'none';
  @ApiProperty({ type: LayerSavingsDto, description: 'Response cache: the engine call a hit replaced.' })
  responseCache!: LayerSavingsDto;
  @ApiProperty({
    type: LayerSavingsDto,
    description: 'Engine prefix cache: cached prompt tokens, prefill spared.',
  })
  enginePrefix!: LayerSavingsDto;
  @ApiProperty({
    description: 'Prompt tokens a hosted provider reported cached (0 for a self-hosted engine).',
  })
  providerCachedTokens!: number;
}

/** The answer of a turn just run: the stored message and what the turn saved. */
export class TurnAnswerDto extends MessageDto {
  @ApiPropertyOptional({
    type: TurnSavingsDto,
    description: 'What each cache layer saved this turn (only in the turn response, not in message lists).',
  })
  savings?: TurnSavingsDto;
}

/**
 * A completed turn: both stored messages. The answer's usage, timings, cache report and route are
 * the assistant message's (`assistantMessage.usage`, `.timings`, `.cache`, `.route`).
 */
export class TurnResponseDto {
  @ApiProperty({ format: 'uuid' }) conversationId!: string;
  @ApiProperty({ type: MessageDto }) userMessage!: MessageDto;
  @ApiProperty({
    type: TurnAnswerDto,
    description: 'The answer, with its usage, timings, cache report, route and savings.',
  })
  assistantMessage!: TurnAnswerDto;
}
