import type { FastifyRequest } from 'fastify';
import { InvalidRequest } from '../common/domain-error';
import type { ChatCompletionCommand, CompletedChat } from './chat-completions.service';
import type { ChatCompletionDto, ChatCompletionRequestDto } from './dto/chat-completion.dto';

/**
 * The request fields toCommand reads: the validated DTO (the controller), or a body that passed the
 * exact-hit fast path's JSON schema (exact-hit.hook.ts), which accepts a subset of what the DTO accepts.
 */
export type ChatCompletionRequestBody = Pick<
  ChatCompletionRequestDto,
  | 'model'
  | 'messages'
  | 'stream'
  | 'temperature'
  | 'top_p'
  | 'max_tokens'
  | 'max_completion_tokens'
  | 'stop'
  | 'seed'
  | 'presence_penalty'
  | 'frequency_penalty'
  | 'cache'
>;

/**
 * Top-level request fields kvchat maps itself; every other field the client sent (validated in the DTO or
 * not: `tools`, `response_format`, `n`, `logprobs`, vendor fields) is passed to the engine as given.
 */
const MAPPED_FIELDS = new Set([
  'model',
  'messages',
  'stream',
  'stream_options',
  'temperature',
  'top_p',
  'max_tokens',
  'max_completion_tokens',
  'stop',
  'seed',
  'presence_penalty',
  'frequency_penalty',
  'cache',
]);

/**
 * The fields passed to the engine as the client sent them (see MAPPED_FIELDS).
 * @throws InvalidRequest for `cache_salt`: the server derives it from the tenant, a client never sets it
 */
export function extraFields(raw: unknown): Record<string, unknown> | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const extra = Object.fromEntries(
    Object.entries(raw as Record<string, unknown>).filter(
      ([k, v]) => !MAPPED_FIELDS.has(k) && v !== undefined,
    ),
  );
  if (extra.top_logprobs !== undefined && extra.top_logprobs !== null && extra.logprobs !== true) {
    throw new InvalidRequest('top_logprobs needs logprobs: true.', { field: 'top_logprobs' });
  }
  if ('cache_salt' in extra) {
    throw new InvalidRequest('cache_salt is set by the server from the tenant; remove it from the request.', {
      field: 'cache_salt',
    });
  }
  return Object.keys(extra).length > 0 ? extra : undefined;
}

/** The command for a validated request body (`raw`: the body as parsed, with the fields the DTO does not know). */
export function toCommand(body: ChatCompletionRequestBody, raw: unknown): ChatCompletionCommand {
  const sampling = {
    ...(body.top_p !== undefined ? { top_p: body.top_p } : {}),
    ...(body.stop !== undefined ? { stop: body.stop } : {}),
    ...(body.seed !== undefined ? { seed: body.seed } : {}),
    ...(body.presence_penalty !== undefined ? { presence_penalty: body.presence_penalty } : {}),
    ...(body.frequency_penalty !== undefined ? { frequency_penalty: body.frequency_penalty } : {}),
  };
  return {
    model: body.model,
    messages: body.messages,
    temperature: body.temperature,
    maxTokens: body.max_completion_tokens ?? body.max_tokens,
    sampling: Object.keys(sampling).length > 0 ? sampling : undefined,
    extra: extraFields(raw),
    cache: body.cache,
    streamed: body.stream === true,
  };
}

/** The OpenAI `chat.completion` object. */
export function toChatCompletion(done: CompletedChat): ChatCompletionDto {
  return {
    id: done.id,
    object: 'chat.completion',
    created: done.created,
    model: done.model,
    choices: done.choices.map((c) => ({
      index: c.index,
      message: {
        role: 'assistant',
        content: c.toolCalls.length > 0 && c.content === '' ? null : c.content,
        refusal: null,
        ...(c.toolCalls.length > 0 ? { tool_calls: c.toolCalls } : {}),
      },
      logprobs: c.logprobs ? { content: c.logprobs } : null,
      finish_reason: c.finishReason,
    })),
    usage: done.usage,
    ...(done.cache ? { kvchat: kvchatExtension(done) } : {}),
  };
}

/** `x-kvchat-cache`: `off`, `miss`, `hit-exact` or `hit-semantic`. */
export function cacheHeader(done: CompletedChat): string {
  if (!done.cache) return 'off';
  return done.cache.hit ? `hit-${done.cache.type}` : 'miss';
}

/** kvchat's extension member: what the response cache did, and the entry a fresh answer was stored as. */
export function kvchatExtension(done: CompletedChat): Record<string, unknown> {
  return {
    cache: { response: done.cache, ...(done.storedEntryId ? { storedEntryId: done.storedEntryId } : {}) },
  };
}

/** Request member set when the fast path looked the exact key up and missed (the controller reads it). */
const EXACT_MISSED = Symbol('kvchatExactMissed');

/** Marks a request whose exact key ExactHitHook looked up and missed. */
export function markExactMiss(request: FastifyRequest): void {
  (request as FastifyRequest & { [EXACT_MISSED]?: true })[EXACT_MISSED] = true;
}

/**
 * True when ExactHitHook looked this request's exact key up and missed: the normal path passes
 * `exactMissed` on, so that the key is not asked for twice.
 */
export function exactMissed(request: FastifyRequest): boolean {
  return (request as FastifyRequest & { [EXACT_MISSED]?: true })[EXACT_MISSED] === true;
}
