import { randomUUID } from 'node:crypto';
import { Controller, Get, HttpCode, Post, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../auth/api-key.service';
import { AccessPolicy } from '../auth/access-policy.service';
import { Auth, RequireScopes } from '../auth/auth.guard';
import { RateLimitService } from '../auth/limits/rate-limit.service';
import { ApiProblems } from '../common/api-problems.decorator';
import { toOpenAiError } from '../common/openai-error';
import { toProblem } from '../common/problem.filter';
import { clientDisconnectSignal, SseWriter } from '../common/sse';
import { AppConfig } from '../config/app.config';
import { AdmittedAsTurn } from '../lifecycle/turn-admission.hook';
import {
  Idempotent,
  type IdempotentRoute,
  publishIdempotentResult,
} from '../idempotency/idempotency.interceptor';
import { ChatCompletionsService, type CompletedChat } from './chat-completions.service';
import { describeAttempts } from '../inference/deployment-guards';
import type { ProviderRoute } from '../inference/inference.types';
import { ChatCompletionDto, ChatCompletionRequestDto, ModelListDto } from './dto/chat-completion.dto';
import {
  cacheHeader,
  exactMissed,
  kvchatExtension,
  toChatCompletion,
  toCommand,
} from './chat-completion.mapping';
import { OpenAiBody } from './openai-body.decorator';
import { isPlainChatCompletionBody } from './chat-completion.schema';

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
    private readonly config: AppConfig,
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
    @OpenAiBody(isPlainChatCompletionBody) body: ChatCompletionRequestDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ChatCompletionDto | undefined> {
    this.access.assertModelAllowed(auth, body.model);
    const command = {
      ...toCommand(body, request.body),
      requestId: String(request.id),
      ...(exactMissed(request) ? { exactMissed: true } : {}),
    };
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
    // Content pieces after the first may share socket writes (SSE_FLUSH_INTERVAL_MS); every other chunk is sent at once.
    const sse = new SseWriter(reply, { flushIntervalMs: this.config.SSE_FLUSH_INTERVAL_MS });
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
            true,
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
        sse.sendData(chunk([{ index: delta.choice, ...piece, finish_reason: null }]), true);
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
