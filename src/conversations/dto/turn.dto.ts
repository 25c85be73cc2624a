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

/**
 * A completed turn: both stored messages. The answer's usage, timings, cache report and route are
 * the assistant message's (`assistantMessage.usage`, `.timings`, `.cache`, `.route`).
 */
export class TurnResponseDto {
  @ApiProperty({ format: 'uuid' }) conversationId!: string;
  @ApiProperty({ type: MessageDto }) userMessage!: MessageDto;
  @ApiProperty({
    type: MessageDto,
    description: 'The answer, with its usage, timings, cache report and route.',
  })
  assistantMessage!: MessageDto;
}
