import Ajv from 'ajv';
import { CACHE_CONTROL_SCHEMA } from '../../caching/dto/cache-control.schema';
import type { PostTurnDto } from './turn.dto';

/**
 * PostTurnDto as a JSON schema: the same fields and bounds, no others (the global pipe's
 * `forbidNonWhitelisted`). Stricter only where class-validator's `@IsOptional` also lets `null` through:
 * such a body fails here and is validated by the DTO.
 */
export const POST_TURN_SCHEMA = {
  type: 'object',
  required: ['content'],
  additionalProperties: false,
  properties: {
    content: { type: 'string', minLength: 1 },
    stream: { type: 'boolean' },
    maxTokens: { type: 'integer', minimum: 1, maximum: 32768 },
    temperature: { type: 'number', minimum: 0, maximum: 2 },
    cache: CACHE_CONTROL_SCHEMA,
  },
} as const;

/**
 * Whether `body` is a turn's body as POST_TURN_SCHEMA has it, compiled once by ajv with no coercion and
 * no defaults: the route's body pipe (SchemaBody) takes such a body as sent, without class-validator.
 */
export const isPlainPostTurnBody = new Ajv({ allErrors: false }).compile<PostTurnDto>(POST_TURN_SCHEMA);
