import { randomUUID } from 'node:crypto';
import { Controller, Get, HttpCode, Post, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../auth/api-key.service';
import { AccessPolicy } from '../auth/access-policy.service';
import { Auth, RequireScopes } from '../auth/auth.guard';
import { RateLimitService } from '../auth/limits/rate-limit.service';
import { ApiProblems } from '../common/api-problems.decorator';
import { InvalidRequest } from '../common/domain-error';
import { toOpenAiError } from '../common/openai-error';
import { toProblem } from '../common/problem.filter';
import { clientDisconnectSignal, SseWriter } from '../common/sse';
import { AdmittedAsTurn } from '../lifecycle/turn-admission.hook';
import {
  Idempotent,
  type IdempotentRoute,
  publishIdempotentResult,
} from '../idempotency/idempotency.interceptor';
import {
  ChatCompletionsService,
  type ChatCompletionCommand,
  type CompletedChat,
} from './chat-completions.service';
import { describeAttempts } from '../inference/deployment-guards';
import type { ProviderRoute } from '../inference/inference.types';
import { ChatCompletionDto, ChatCompletionRequestDto, ModelListDto } from './dto/chat-completion.dto';
import { OpenAiBody } from './openai-body.decorator';

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
function toCommand(body: ChatCompletionRequestDto, raw: unknown): ChatCompletionCommand {
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
function toChatCompletion(done: CompletedChat): ChatCompletionDto {
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

/** A streamed replay of a stored `chat.completion`: the role, the whole content, the finish, usage, `[DONE]`. */
const COMPLETION_ROUTE: IdempotentRoute = {
  wantsStream: (request) => (request.body as { stream?: unknown } | undefined)?.stream === true,
  replayStream: (sse, response) => {
    const done = response.body as ChatCompletionDto;
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): string =>
      JSON.stringify({
        id: done.id,
        object: 'chat.completion.chunk',
        created: done.created,
        model: done.model,
        choices,
        ...extra,
      });
    for (const choice of done.choices) {
      const { index, message } = choice;
      sse.sendData(
        chunk([{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]),
      );
      const delta = {
        ...(message.content ? { content: message.content } : {}),
        ...(message.tool_calls
          ? { tool_calls: message.tool_calls.map((call, i) => ({ index: i, ...call })) }
          : {}),
      };
      sse.sendData(chunk([{ index, delta, logprobs: choice.logprobs, finish_reason: null }]));
      sse.sendData(chunk([{ index, delta: {}, logprobs: null, finish_reason: choice.finish_reason }]));
    }
    sse.sendData(chunk([], { usage: done.usage }));
    sse.sendData('[DONE]');
  },
};

/**
 * OpenAI-compatible, stateless: point an OpenAI SDK's `baseURL` at `<kvchat>/v1` with a kvchat API
 * key and it gets the same response cache as turns, with no code change.
 */
@ApiTags('openai')
@ApiBearerAuth()
@ApiProblems(401, 403, 429)
@RequireScopes('completions')
@Controller('v1')
export class ChatCompletionsController {
  constructor(
    private readonly completions: ChatCompletionsService,
    private readonly access: AccessPolicy,
    private readonly limits: RateLimitService,
  ) {}

  @Get('models')
  @ApiOperation({
    summary: 'List the served models: the chat model, then the embedding models (OpenAI `GET /v1/models`)',
  })
  @ApiOkResponse({ type: ModelListDto })
  async models(): Promise<ModelListDto> {
    const created = Math.floor(Date.now() / 1000);
    const ids = await this.completions.models();
    return { object: 'list', data: ids.map((id) => ({ id, object: 'model', created, owned_by: 'kvchat' })) };
  }

  @Post('chat/completions')
  @AdmittedAsTurn()
  @HttpCode(200)
  @Idempotent(COMPLETION_ROUTE)
  @ApiOperation({
    summary: 'Create a chat completion (OpenAI-compatible, stateless, response-cached)',
    description:
      'The OpenAI chat completions API as its reference defines it: tools and tool messages, `tool_choice`, ' +
      '`response_format`, `n`, `logprobs`, `user`, `metadata`; other fields are passed to the engine as sent ' +
      '(docs/api.md, OpenAI compatibility). With `stream: true` the answer streams as ' +
      'OpenAI `chat.completion.chunk` events ending with `data: [DONE]`; `stream_options.include_usage` adds the ' +
      'usage chunk. Repeated and paraphrased questions (same system prompt, history and parameters) are answered ' +
      'from the response cache — replayed as a stream when one is asked for — with `usage.prompt_tokens_details.' +
      'cached_tokens` = prompt tokens, the `x-kvchat-cache` header (non-streamed) and `kvchat.cache.response`. ' +
      'kvchat extension: `cache: {mode, maxAgeSeconds}`. Errors are OpenAI error objects (`{error: {message, type, ' +
      'param, code}}`).',
  })
  @ApiBody({ type: ChatCompletionRequestDto })
  @ApiProduces('application/json', 'text/event-stream')
  @ApiOkResponse({
    type: ChatCompletionDto,
    description:
      'A `chat.completion` (JSON), or with `stream: true` a `text/event-stream` of `chat.completion.chunk` ' +
      'data events ending with `data: [DONE]`.',
  })
  @ApiProblems(400, 404, 413, 502, 503, 504)
  async create(
    @Auth() auth: AuthContext,
    @OpenAiBody() body: ChatCompletionRequestDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ChatCompletionDto | undefined> {
    this.access.assertModelAllowed(auth, body.model);
    const command = { ...toCommand(body, request.body), requestId: String(request.id) };
    const signal = clientDisconnectSignal(reply);
    if (body.stream !== true) {
      const done = await this.completions.complete(auth, command, signal);
      await this.limits.chargeTokens(auth, engineTokens(done));
      void reply.header('x-kvchat-cache', cacheHeader(done));
      if (done.provider) setProviderHeaders(reply, done.provider);
      return toChatCompletion(done);
    }
    // Unknown models are a 404 before any byte of the stream.
    const model = await this.completions.resolveModel(body.model);
    const id = `chatcmpl-${randomUUID().replace(/-/g, '')}`;
    const created = Math.floor(Date.now() / 1000);
    const includeUsage = body.stream_options?.include_usage === true;
    const sse = new SseWriter(reply);
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): string =>
      JSON.stringify({
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        choices,
        ...(includeUsage ? { usage: null } : {}),
        ...extra,
      });
    const opened = new Set<number>();
    const open = (index: number): void => {
      if (opened.has(index)) return;
      opened.add(index);
      sse.sendData(
        chunk([{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]),
      );
    };
    try {
      const done = await this.completions.complete(auth, command, signal, (event) => {
        // The answering provider's x-kvchat-* headers go out with the stream's first byte.
        if (event.type === 'route') {
          setProviderHeaders(reply, event.route);
          return;
        }
        if (event.type === 'token') {
          open(0);
          sse.sendData(
            chunk([{ index: 0, delta: { content: event.delta }, logprobs: null, finish_reason: null }]),
          );
          return;
        }
        if (event.type !== 'choice') return;
        const delta = event.choice;
        // Finish reasons go out once every choice is done, below.
        if (delta.type === 'finish') return;
        open(delta.choice);
        const piece =
          delta.type === 'content'
            ? {
                delta: delta.text ? { content: delta.text } : {},
                logprobs: delta.logprobs ? { content: delta.logprobs } : null,
              }
            : {
                delta: {
                  tool_calls: [
                    {
                      index: delta.index,
                      ...(delta.id ? { id: delta.id, type: 'function' } : {}),
                      function: { ...(delta.name ? { name: delta.name } : {}), arguments: delta.arguments },
                    },
                  ],
                },
                logprobs: null,
              };
        sse.sendData(chunk([{ index: delta.choice, ...piece, finish_reason: null }]));
      });
      await this.limits.chargeTokens(auth, engineTokens(done));
      publishIdempotentResult(request, 200, { ...toChatCompletion(done), id, created, model });
      for (const choice of done.choices) {
        open(choice.index);
        sse.sendData(
          chunk([{ index: choice.index, delta: {}, logprobs: null, finish_reason: choice.finishReason }], {
            ...(done.cache && choice.index === done.choices.length - 1
              ? { kvchat: kvchatExtension(done) }
              : {}),
          }),
        );
      }
      if (includeUsage) sse.sendData(chunk([], { usage: done.usage }));
      sse.sendData('[DONE]');
      sse.end();
      return undefined;
    } catch (e) {
      if (!sse.isStarted) throw e;
      // OpenAI streams report a failure as a data event with an `error` member; the SDK raises it.
      sse.sendData(JSON.stringify(toOpenAiError(toProblem(e, request.url, String(request.id)))));
      sse.end();
      return undefined;
    }
  }
}

/**
 * Which catalogue target answered: `x-kvchat-model` (public), `x-kvchat-provider`, `x-kvchat-deployment`,
 * `x-kvchat-upstream-model`, and `x-kvchat-attempts` (`openai-a=429,anthropic-b=ok`, in order).
 */
function setProviderHeaders(reply: FastifyReply, route: ProviderRoute): void {
  void reply.headers({
    'x-kvchat-model': route.model,
    'x-kvchat-provider': route.provider,
    'x-kvchat-deployment': route.deployment,
    'x-kvchat-upstream-model': route.upstreamModel,
    'x-kvchat-attempts': describeAttempts(route.attempts),
  });
}

/** Tokens the engine processed for the answer: none for a response-cache hit (tpm and token budgets count these). */
function engineTokens(done: CompletedChat): number {
  return done.cache?.hit ? 0 : done.usage.total_tokens;
}

function cacheHeader(done: CompletedChat): string {
  if (!done.cache) return 'off';
  return done.cache.hit ? `hit-${done.cache.type}` : 'miss';
}

/** kvchat's extension member: what the response cache did, and the entry a fresh answer was stored as. */
function kvchatExtension(done: CompletedChat): Record<string, unknown> {
  return {
    cache: { response: done.cache, ...(done.storedEntryId ? { storedEntryId: done.storedEntryId } : {}) },
  };
}
