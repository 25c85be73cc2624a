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
  Matches,
  Max,
  MaxLength,
  Min,
  registerDecorator,
  ValidateIf,
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

/** The function a tool call invokes: its name and its arguments as a JSON string (OpenAI's shape). */
export class ToolCallFunctionDto {
  @ApiProperty({ example: 'get_weather' })
  @IsString()
  @MaxLength(64)
  name!: string;

  @ApiProperty({ description: 'The arguments, a JSON text.', example: '{"city":"Paris"}' })
  @IsString()
  arguments!: string;
}

/** An assistant message's tool call (`messages[].tool_calls[]`). */
export class ToolCallDto {
  @ApiProperty({ example: 'call_abc123' })
  @IsString()
  @MaxLength(256)
  id!: string;

  @ApiProperty({ enum: ['function'] })
  @IsIn(['function'], { message: "type must be 'function'" })
  type!: 'function';

  @ApiProperty({ type: ToolCallFunctionDto })
  @IsObject()
  @ValidateNested()
  @Type(() => ToolCallFunctionDto)
  function!: ToolCallFunctionDto;
}

const ROLES = ['system', 'developer', 'user', 'assistant', 'tool'] as const;

/** One message of a Chat Completions request (roles system, developer, user, assistant, tool), as the OpenAI API reference defines it. */
export class ChatCompletionMessageDto {
  @ApiProperty({ enum: ROLES, example: 'user' })
  @IsIn(ROLES, { message: 'role must be system, developer, user, assistant or tool' })
  role!: (typeof ROLES)[number];

  @ApiPropertyOptional({
    oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'object' } }],
    nullable: true,
    description: 'Required except on an assistant message with `tool_calls` (then null or absent).',
    example: 'What is a KV cache?',
  })
  @ValidateIf((m: ChatCompletionMessageDto) => !(m.role === 'assistant' && m.tool_calls?.length))
  @IsMessageContent()
  content?: string | TextContentPart[] | null;

  @ApiPropertyOptional({ description: 'Participant name (passed to the engine).', example: 'alice' })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  name?: string;

  @ApiPropertyOptional({ type: [ToolCallDto], description: 'Assistant messages: the tools it called.' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(128)
  @ValidateNested({ each: true })
  @Type(() => ToolCallDto)
  tool_calls?: ToolCallDto[];

  @ApiPropertyOptional({
    description: 'Tool messages: the id of the call this answers.',
    example: 'call_abc123',
  })
  @ValidateIf((m: ChatCompletionMessageDto) => m.role === 'tool' || m.tool_call_id !== undefined)
  @IsString({ message: 'tool_call_id must be a string (required on a tool message)' })
  @MaxLength(256)
  tool_call_id?: string;
}

/** A tool's function: name, description and its parameters as a JSON Schema object. */
export class FunctionDefinitionDto {
  @ApiProperty({ example: 'get_weather', description: 'a-z, A-Z, 0-9, _ and -, at most 64.' })
  @Matches(/^[a-zA-Z0-9_-]{1,64}$/, { message: 'name must be 1-64 of a-z, A-Z, 0-9, _ and -' })
  name!: string;

  @ApiPropertyOptional({ example: 'The current weather of a city.' })
  @IsOptional()
  @IsString()
  description?: string;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: 'JSON Schema of the arguments.',
  })
  @IsOptional()
  @IsObject()
  parameters?: Record<string, unknown>;

  @ApiPropertyOptional()
  @IsOptional()
  @IsBoolean()
  strict?: boolean;
}

/** A tool the model may call (`tools[]`): a function. */
export class ToolDto {
  @ApiProperty({ enum: ['function'] })
  @IsIn(['function'], { message: "type must be 'function'" })
  type!: 'function';

  @ApiProperty({ type: FunctionDefinitionDto })
  @IsObject()
  @ValidateNested()
  @Type(() => FunctionDefinitionDto)
  function!: FunctionDefinitionDto;
}

/** `response_format.json_schema`: a named JSON Schema the answer must follow (`strict` asks the upstream to enforce it). */
export class JsonSchemaFormatDto {
  @ApiProperty({ example: 'answer' })
  @Matches(/^[a-zA-Z0-9_-]{1,64}$/, { message: 'name must be 1-64 of a-z, A-Z, 0-9, _ and -' })
  name!: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  description?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  @IsOptional()
  @IsObject()
  schema?: Record<string, unknown>;

  @ApiPropertyOptional()
  @IsOptional()
  @IsBoolean()
  strict?: boolean;
}

/** `response_format`: `text`, `json_object`, or `json_schema` with its schema. */
export class ResponseFormatDto {
  @ApiProperty({ enum: ['text', 'json_object', 'json_schema'] })
  @IsIn(['text', 'json_object', 'json_schema'], {
    message: "type must be 'text', 'json_object' or 'json_schema'",
  })
  type!: 'text' | 'json_object' | 'json_schema';

  @ApiPropertyOptional({ type: JsonSchemaFormatDto, description: 'Required with `json_schema`.' })
  @ValidateIf((f: ResponseFormatDto) => f.type === 'json_schema')
  @IsObject({ message: 'json_schema is required when type is json_schema' })
  @ValidateNested()
  @Type(() => JsonSchemaFormatDto)
  json_schema?: JsonSchemaFormatDto;
}

/** `tool_choice`: `none`, `auto`, `required`, or `{type: 'function', function: {name}}`. */
function IsToolChoice(options?: ValidationOptions): PropertyDecorator {
  return (object, propertyName) =>
    registerDecorator({
      name: 'isToolChoice',
      target: object.constructor,
      propertyName: propertyName as string,
      options: {
        message: `${String(propertyName)} must be 'none', 'auto', 'required' or {type: 'function', function: {name}}`,
        ...options,
      },
      validator: {
        validate: (v: unknown) => {
          if (v === 'none' || v === 'auto' || v === 'required') return true;
          const o = v as { type?: unknown; function?: { name?: unknown } } | null;
          return (
            typeof o === 'object' &&
            o !== null &&
            o.type === 'function' &&
            typeof o.function?.name === 'string'
          );
        },
      },
    });
}

/** `stream_options`: `include_usage` adds a last chunk with the token usage. */
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
 * `POST /v1/chat/completions` as the OpenAI API reference defines it. The fields below are validated
 * (a 400 names the field); any other top-level field (`logit_bias`, `service_tier`, vendor fields such
 * as vLLM's `top_k`) is passed to the engine as given, except `cache_salt`, which only the server sets.
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

  @ApiPropertyOptional({
    minimum: 1,
    maximum: 16,
    description: 'Choices to generate. n > 1 is never answered from, nor stored in, the response cache.',
    example: 1,
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(16)
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

  @ApiPropertyOptional({ description: 'End-user id (passed to the engine).', example: 'user-123' })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  user?: string;

  @ApiPropertyOptional({ type: [ToolDto], maxItems: 128, description: 'Functions the model may call.' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(128)
  @IsObject({ each: true, message: 'each of tools must be an object {type, function}' })
  @ValidateNested({ each: true })
  @Type(() => ToolDto)
  tools?: ToolDto[];

  @ApiPropertyOptional({
    oneOf: [
      { type: 'string', enum: ['none', 'auto', 'required'] },
      { type: 'object', properties: { type: { enum: ['function'] }, function: { type: 'object' } } },
    ],
    example: 'auto',
  })
  @IsOptional()
  @IsToolChoice()
  tool_choice?: 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };

  @ApiPropertyOptional({ example: true })
  @IsOptional()
  @IsBoolean()
  parallel_tool_calls?: boolean;

  @ApiPropertyOptional({ type: ResponseFormatDto })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => ResponseFormatDto)
  response_format?: ResponseFormatDto;

  @ApiPropertyOptional({ description: 'Return log probabilities of the output tokens.', example: true })
  @IsOptional()
  @IsBoolean()
  logprobs?: boolean;

  @ApiPropertyOptional({
    minimum: 0,
    maximum: 20,
    description: 'Alternatives per token; needs `logprobs: true`.',
    example: 2,
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(20)
  top_logprobs?: number;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string' },
    description: 'Up to 16 string pairs (passed to the engine).',
  })
  @IsOptional()
  @IsObject()
  metadata?: Record<string, string>;

  @ApiPropertyOptional({ description: 'Passed to the engine (OpenAI stores the completion).' })
  @IsOptional()
  @IsBoolean()
  store?: boolean;

  @ApiPropertyOptional({ enum: ['none', 'minimal', 'low', 'medium', 'high'] })
  @IsOptional()
  @IsIn(['none', 'minimal', 'low', 'medium', 'high'], {
    message: "reasoning_effort must be 'none', 'minimal', 'low', 'medium' or 'high'",
  })
  reasoning_effort?: string;

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
  @ApiProperty({ type: String, nullable: true, description: 'null when the answer is only tool calls.' })
  content!: string | null;
  @ApiProperty({ type: String, nullable: true }) refusal!: null;
  @ApiPropertyOptional({ type: [ToolCallDto], description: 'The tools the model called.' })
  tool_calls?: ToolCallDto[];
}

class ChatCompletionChoiceDto {
  @ApiProperty() index!: number;
  @ApiProperty({ type: ChatCompletionResponseMessageDto }) message!: ChatCompletionResponseMessageDto;
  @ApiProperty({
    type: 'object',
    nullable: true,
    additionalProperties: true,
    description: 'With `logprobs: true`: `{content: [{token, logprob, bytes, top_logprobs}]}`.',
  })
  logprobs!: { content: unknown[] } | null;
  @ApiProperty({ example: 'stop', description: '`stop`, `length` or `tool_calls`.' }) finish_reason!: string;
}

class PromptTokensDetailsDto {
  @ApiProperty({
    description:
      'Prompt tokens served from a cache (engine prefix cache; all of them on a response-cache hit).',
  })
  cached_tokens!: number;
}

/** Token usage of a completion: prompt, completion and total tokens, and the prompt tokens served from a cache. */
export class CompletionUsageDto {
  @ApiProperty() prompt_tokens!: number;
  @ApiProperty() completion_tokens!: number;
  @ApiProperty() total_tokens!: number;
  @ApiProperty({ type: PromptTokensDetailsDto }) prompt_tokens_details!: PromptTokensDetailsDto;
}

/** A non-streamed Chat Completions response (`object: chat.completion`), OpenAI's shape. */
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

/** `GET /v1/models`: the catalogue's public model names (`object: list`). */
export class ModelListDto {
  @ApiProperty({ enum: ['list'] }) object!: 'list';
  @ApiProperty({ type: [ModelCardDto] }) data!: ModelCardDto[];
}

/** `POST /v1/embeddings` (OpenAI-compatible). */
export class EmbeddingRequestDto {
  @ApiProperty({
    description: 'The embedding model (GET /v1/models).',
    example: 'kvchat-sim-lexical-embedding',
  })
  @IsString()
  @MaxLength(300)
  model!: string;

  @ApiProperty({
    oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, maxItems: 2048 }],
    description: 'A text or up to 2048 texts, each non-empty and at most MAX_MESSAGE_CHARS characters.',
    example: 'What is a KV cache?',
  })
  @IsEmbeddingInput()
  input!: string | string[];

  @ApiPropertyOptional({ enum: ['float', 'base64'], default: 'float' })
  @IsOptional()
  @IsIn(['float', 'base64'], { message: "encoding_format must be 'float' or 'base64'" })
  encoding_format?: 'float' | 'base64';

  @ApiPropertyOptional({ minimum: 1, description: 'Truncate each vector to this many dimensions.' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(65536)
  dimensions?: number;

  @ApiPropertyOptional({ description: 'End-user id (accepted, not used).' })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  user?: string;
}

/** Embedding input: a non-empty string, or 1..2048 non-empty strings. */
function IsEmbeddingInput(options?: ValidationOptions): PropertyDecorator {
  return (object, propertyName) =>
    registerDecorator({
      name: 'isEmbeddingInput',
      target: object.constructor,
      propertyName: propertyName as string,
      options: {
        message: `${String(propertyName)} must be a non-empty string or an array of 1 to 2048 non-empty strings`,
        ...options,
      },
      validator: {
        validate: (v: unknown) =>
          (typeof v === 'string' && v.length > 0) ||
          (Array.isArray(v) &&
            v.length > 0 &&
            v.length <= 2048 &&
            v.every((s) => typeof s === 'string' && s.length > 0)),
      },
    });
}

class EmbeddingDto {
  @ApiProperty({ enum: ['embedding'] }) object!: 'embedding';
  @ApiProperty() index!: number;
  @ApiProperty({
    oneOf: [{ type: 'array', items: { type: 'number' } }, { type: 'string' }],
    description: 'Floats, or with `encoding_format: base64` little-endian float32 bytes in base64.',
  })
  embedding!: number[] | string;
}

class EmbeddingUsageDto {
  @ApiProperty({ description: 'Input tokens (0 for texts answered from the embeddings cache).' })
  prompt_tokens!: number;
  @ApiProperty() total_tokens!: number;
}

/** A `/v1/embeddings` response: one vector per input (floats, or base64 little-endian float32), with usage. */
export class EmbeddingListDto {
  @ApiProperty({ enum: ['list'] }) object!: 'list';
  @ApiProperty({ type: [EmbeddingDto] }) data!: EmbeddingDto[];
  @ApiProperty() model!: string;
  @ApiProperty({ type: EmbeddingUsageDto }) usage!: EmbeddingUsageDto;
}
