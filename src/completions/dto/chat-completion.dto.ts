import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  Max,
  MaxLength,
  Min,
  registerDecorator,
  ValidateNested,
  type ValidationOptions,
} from 'class-validator';
import { CacheControlDto } from '../../caching/dto/cache-control.dto';

/** A text content part (`{type: 'text', text}`); other part types are not supported. */
export interface TextContentPart {
  type: 'text';
  text: string;
}

const isTextPart = (p: unknown): p is TextContentPart =>
  typeof p === 'object' &&
  p !== null &&
  (p as TextContentPart).type === 'text' &&
  typeof (p as TextContentPart).text === 'string';

/** Message content: a string, or an array of text parts. */
function IsMessageContent(options?: ValidationOptions): PropertyDecorator {
  return (object, propertyName) =>
    registerDecorator({
      name: 'isMessageContent',
      target: object.constructor,
      propertyName: propertyName as string,
      options: {
        message: `${String(propertyName)} must be a string or an array of {type: 'text', text} parts`,
        ...options,
      },
      validator: {
        validate: (v: unknown) =>
          typeof v === 'string' || (Array.isArray(v) && v.length > 0 && v.every(isTextPart)),
      },
    });
}

/** Stops: a string or up to 4 strings. */
function IsStop(options?: ValidationOptions): PropertyDecorator {
  return (object, propertyName) =>
    registerDecorator({
      name: 'isStop',
      target: object.constructor,
      propertyName: propertyName as string,
      options: {
        message: `${String(propertyName)} must be a string or an array of up to 4 strings`,
        ...options,
      },
      validator: {
        validate: (v: unknown) =>
          typeof v === 'string' ||
          (Array.isArray(v) && v.length <= 4 && v.every((s) => typeof s === 'string')),
      },
    });
}

export class ChatCompletionMessageDto {
  @ApiProperty({ enum: ['system', 'developer', 'user', 'assistant'], example: 'user' })
  @IsIn(['system', 'developer', 'user', 'assistant'], {
    message: 'role must be system, developer, user or assistant',
  })
  role!: 'system' | 'developer' | 'user' | 'assistant';

  @ApiProperty({
    oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'object' } }],
    example: 'What is a KV cache?',
  })
  @IsMessageContent()
  content!: string | TextContentPart[];

  @ApiPropertyOptional({ description: 'Participant name (accepted, not used).', example: 'alice' })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  name?: string;
}

export class StreamOptionsDto {
  @ApiPropertyOptional({
    description: 'Send a last chunk with `usage` (and `usage: null` on the others).',
    example: true,
  })
  @IsOptional()
  @IsBoolean()
  include_usage?: boolean;
}

/**
 * `POST /v1/chat/completions`, the OpenAI request subset kvchat serves. Fields outside it
 * (`tools`, `logprobs`, `response_format`, ...) are rejected with a 400 naming them.
 */
export class ChatCompletionRequestDto {
  @ApiProperty({ description: 'The served model (GET /v1/models).', example: 'kvchat-sim-llama-3.1-8b' })
  @IsString()
  @MaxLength(300)
  model!: string;

  @ApiProperty({
    type: [ChatCompletionMessageDto],
    maxItems: 1024,
    description: 'Each content at most MAX_MESSAGE_CHARS characters, all together at most MAX_PROMPT_CHARS.',
    example: [{ role: 'user', content: 'What is a KV cache?' }],
  })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(1024)
  @IsObject({ each: true, message: 'each of messages must be an object {role, content}' })
  @ValidateNested({ each: true })
  @Type(() => ChatCompletionMessageDto)
  messages!: ChatCompletionMessageDto[];

  @ApiPropertyOptional({
    default: false,
    description: 'Stream chunks as Server-Sent Events ending with `data: [DONE]`.',
    example: false,
  })
  @IsOptional()
  @IsBoolean()
  stream?: boolean;

  @ApiPropertyOptional({ type: StreamOptionsDto })
  @IsOptional()
  @ValidateNested()
  @Type(() => StreamOptionsDto)
  stream_options?: StreamOptionsDto;

  @ApiPropertyOptional({ minimum: 0, maximum: 2, example: 0.7 })
  @IsOptional()
  @IsNumber()
  @Min(0)
  @Max(2)
  temperature?: number;

  @ApiPropertyOptional({ minimum: 0, maximum: 1, example: 1 })
  @IsOptional()
  @IsNumber()
  @Min(0)
  @Max(1)
  top_p?: number;

  @ApiPropertyOptional({
    minimum: 1,
    maximum: 32768,
    description: 'Completion budget, tokens (reserved in the context window).',
    example: 256,
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(32768)
  max_tokens?: number;

  @ApiPropertyOptional({
    minimum: 1,
    maximum: 32768,
    description: 'Same as max_tokens (newer name).',
    example: 256,
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(32768)
  max_completion_tokens?: number;

  @ApiPropertyOptional({ minimum: 1, maximum: 1, description: 'Only 1 choice is served.', example: 1 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1)
  n?: number;

  @ApiPropertyOptional({
    oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, maxItems: 4 }],
    example: ['\n\n'],
  })
  @IsOptional()
  @IsStop()
  stop?: string | string[];

  @ApiPropertyOptional({ example: 42 })
  @IsOptional()
  @IsInt()
  seed?: number;

  @ApiPropertyOptional({ minimum: -2, maximum: 2, example: 0 })
  @IsOptional()
  @IsNumber()
  @Min(-2)
  @Max(2)
  presence_penalty?: number;

  @ApiPropertyOptional({ minimum: -2, maximum: 2, example: 0 })
  @IsOptional()
  @IsNumber()
  @Min(-2)
  @Max(2)
  frequency_penalty?: number;

  @ApiPropertyOptional({ description: 'End-user id (accepted, not used).', example: 'user-123' })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  user?: string;

  @ApiPropertyOptional({
    type: CacheControlDto,
    description:
      'kvchat extension: response-cache control (with the OpenAI SDK, pass it in `extra_body`/the body).',
  })
  @IsOptional()
  @ValidateNested()
  @Type(() => CacheControlDto)
  cache?: CacheControlDto;
}

class ChatCompletionResponseMessageDto {
  @ApiProperty({ enum: ['assistant'] }) role!: 'assistant';
  @ApiProperty() content!: string;
  @ApiProperty({ type: String, nullable: true }) refusal!: null;
}

class ChatCompletionChoiceDto {
  @ApiProperty() index!: number;
  @ApiProperty({ type: ChatCompletionResponseMessageDto }) message!: ChatCompletionResponseMessageDto;
  @ApiProperty({ type: Object, nullable: true }) logprobs!: null;
  @ApiProperty({ example: 'stop' }) finish_reason!: string;
}

class PromptTokensDetailsDto {
  @ApiProperty({
    description:
      'Prompt tokens served from a cache (engine prefix cache; all of them on a response-cache hit).',
  })
  cached_tokens!: number;
}

export class CompletionUsageDto {
  @ApiProperty() prompt_tokens!: number;
  @ApiProperty() completion_tokens!: number;
  @ApiProperty() total_tokens!: number;
  @ApiProperty({ type: PromptTokensDetailsDto }) prompt_tokens_details!: PromptTokensDetailsDto;
}

export class ChatCompletionDto {
  @ApiProperty({ example: 'chatcmpl-3f0c...' }) id!: string;
  @ApiProperty({ enum: ['chat.completion'] }) object!: 'chat.completion';
  @ApiProperty({ description: 'Unix seconds.' }) created!: number;
  @ApiProperty() model!: string;
  @ApiProperty({ type: [ChatCompletionChoiceDto] }) choices!: ChatCompletionChoiceDto[];
  @ApiProperty({ type: CompletionUsageDto }) usage!: CompletionUsageDto;
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: 'kvchat extension: `cache.response` = {hit, type, similarity, entryId, guard}.',
  })
  kvchat?: Record<string, unknown>;
}

class ModelCardDto {
  @ApiProperty() id!: string;
  @ApiProperty({ enum: ['model'] }) object!: 'model';
  @ApiProperty() created!: number;
  @ApiProperty() owned_by!: string;
}

export class ModelListDto {
  @ApiProperty({ enum: ['list'] }) object!: 'list';
  @ApiProperty({ type: [ModelCardDto] }) data!: ModelCardDto[];
}
