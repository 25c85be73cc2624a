import Ajv from 'ajv';
import { CACHE_CONTROL_SCHEMA } from '../caching/dto/cache-control.schema';
import type { ChatCompletionRequestBody } from './chat-completion.mapping';

const number = (minimum: number, maximum: number) => ({ type: 'number', minimum, maximum }) as const;
const integer = (minimum: number, maximum: number) => ({ type: 'integer', minimum, maximum }) as const;

/**
 * The plain chat completion requests: a subset of what ChatCompletionRequestDto accepts, with the same
 * bounds, so that whatever passes here would pass the DTO and map to the same command — string or text-part
 * messages of roles system, developer, user and assistant, the sampling fields, `n`, `user`, `stream`
 * (`stream_options.include_usage`) and `cache`. Everything else (tools and tool messages, `response_format`,
 * `logprobs`, null fields, vendor fields, anything invalid) fails it and is validated by the DTO, which
 * names the field of an error.
 */
export const PLAIN_CHAT_COMPLETION_SCHEMA = {
  type: 'object',
  required: ['model', 'messages'],
  additionalProperties: false,
  properties: {
    model: { type: 'string', maxLength: 300 },
    messages: {
      type: 'array',
      minItems: 1,
      maxItems: 1024,
      items: {
        type: 'object',
        required: ['role', 'content'],
        additionalProperties: false,
        properties: {
          role: { enum: ['system', 'developer', 'user', 'assistant'] },
          content: {
            anyOf: [
              { type: 'string' },
              {
                type: 'array',
                minItems: 1,
                items: {
                  type: 'object',
                  required: ['type', 'text'],
                  properties: { type: { const: 'text' }, text: { type: 'string' } },
                },
              },
            ],
          },
          name: { type: 'string', maxLength: 256 },
        },
      },
    },
    stream: { type: 'boolean' },
    stream_options: {
      type: 'object',
      additionalProperties: false,
      properties: { include_usage: { type: 'boolean' } },
    },
    temperature: number(0, 2),
    top_p: number(0, 1),
    max_tokens: integer(1, 32768),
    max_completion_tokens: integer(1, 32768),
    n: integer(1, 16),
    stop: {
      anyOf: [{ type: 'string' }, { type: 'array', maxItems: 4, items: { type: 'string' } }],
    },
    seed: { type: 'integer' },
    presence_penalty: number(-2, 2),
    frequency_penalty: number(-2, 2),
    user: { type: 'string', maxLength: 256 },
    cache: CACHE_CONTROL_SCHEMA,
  },
} as const;

/**
 * Whether `body` is a plain chat completion request (PLAIN_CHAT_COMPLETION_SCHEMA), compiled once by ajv with
 * no coercion and no defaults: the body is read as sent, as the DTO reads it. Used by ExactHitHook, and by
 * the route's body pipe to skip class-validator for these bodies (the same answer, ~10 % of a request's CPU).
 */
export const isPlainChatCompletionBody = new Ajv({ allErrors: false }).compile<
  ChatCompletionRequestBody & { stream_options?: { include_usage?: boolean } }
>(PLAIN_CHAT_COMPLETION_SCHEMA);
