import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { AuthContext } from '../auth/api-key.service';
import { TenantSaltService } from '../auth/tenant-salt.service';
import { replayDeltas } from '../caching/replay';
import { ResponseCache } from '../caching/response-cache.service';
import type { CacheControl, ResponseCacheReport, ResponseCacheScope } from '../caching/response-cache.types';
import { contextFingerprint } from '../caching/scope';
import { PayloadTooLarge } from '../common/domain-error';
import { NEVER_ABORTED, type TurnEvent, type TurnSink, turnEventStream } from '../common/turn-events';
import { AppConfig } from '../config/app.config';
import { InferenceConfig } from '../config/inference.config';
import { InferenceService } from '../inference/inference.service';
import type { ChatMessage, ChatRequest, ChatUsage, ProviderRoute } from '../inference/inference.types';

/** The agent name under which stateless chat completions are cached. */
export const CHAT_COMPLETIONS_AGENT = 'chat-completions';
/** Version of this endpoint's (empty) template: the system prompt is the client's, part of the context. */
export const CHAT_COMPLETIONS_TEMPLATE = 'openai-chat@1';

/**
 * The response-cache scope of a stateless chat request: the tenant, this endpoint, the model, the
 * generation parameters and every message before the last (system prompt included).
 */
export function chatCompletionsScope(
  tenantId: string,
  model: string,
  messages: readonly ChatMessage[],
  params: { temperature?: number; maxTokens: number; sampling?: ChatRequest['sampling'] },
): ResponseCacheScope {
  return {
    tenantId,
    agent: CHAT_COMPLETIONS_AGENT,
    model,
    templateVersion: CHAT_COMPLETIONS_TEMPLATE,
    params: { temperature: params.temperature ?? null, maxTokens: params.maxTokens, ...params.sampling },
    context: contextFingerprint({ history: messages.slice(0, -1) }),
  };
}

/** A stateless chat request, already validated. */
export interface ChatCompletionCommand {
  model: string;
  messages: {
    role: 'system' | 'developer' | 'user' | 'assistant';
    content: string | { type: 'text'; text: string }[];
  }[];
  temperature?: number;
  maxTokens?: number;
  sampling?: ChatRequest['sampling'];
  cache?: CacheControl;
}

/**
 * The payloads of a chat completion's events (see TurnEvent). `route`: the catalogue target that answers
 * and the attempts before it, emitted before the first token (absent for a response-cache hit).
 */
export interface ChatCompletionPayloads {
  route: ProviderRoute;
  cache: ResponseCacheReport;
  usage: ChatUsage;
  done: CompletedChat;
}

/** One event of a chat completion's stream. */
export type ChatCompletionEvent = TurnEvent<ChatCompletionPayloads>;

/** OpenAI `usage`, tokens. */
export interface OpenAiUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

/** A completed chat answer, shaped for the OpenAI wire format by the controller. */
export interface CompletedChat {
  id: string;
  /** Unix seconds. */
  created: number;
  model: string;
  content: string;
  finishReason: string;
  usage: OpenAiUsage;
  /** What the response cache did (undefined when it is disabled). */
  cache?: ResponseCacheReport;
  /** Id of the cache entry this answer was stored as (to invalidate it with DELETE /v1/cache?entryId=). */
  storedEntryId?: string;
  /** The catalogue target that answered and the attempts before it (absent for a response-cache hit). */
  provider?: ProviderRoute;
}

/**
 * Stateless OpenAI-compatible chat completions with the same response cache as turns: the scope is
 * the tenant, this endpoint, the model, the sampling parameters and every message before the last
 * user message (system prompt included); the question is the last user message. A request whose
 * last message is not from the user is not cached.
 */
@Injectable()
export class ChatCompletionsService {
  constructor(
    private readonly inference: InferenceService,
    private readonly cache: ResponseCache,
    private readonly salts: TenantSaltService,
    private readonly config: InferenceConfig,
    private readonly limits: AppConfig,
  ) {}

  /** The catalogue's public model names (without a catalogue file, the engine's chat model). */
  models(): Promise<string[]> {
    return this.inference.modelNames();
  }

  /**
   * The catalogue's model when `requested` names it. @throws ModelNotServed (code ModelNotFound, 404) otherwise
   */
  resolveModel(requested: string): Promise<string> {
    return this.inference.resolveModel(requested);
  }

  /**
   * Bounds a prompt before anything counts, embeds or sends it.
   * @throws PayloadTooLarge naming `messages[i].content` past MAX_MESSAGE_CHARS, or `messages` past MAX_PROMPT_CHARS
   */
  checkLength(messages: readonly ChatMessage[]): void {
    const { MAX_MESSAGE_CHARS: perMessage, MAX_PROMPT_CHARS: total } = this.limits;
    let sum = 0;
    for (const [i, m] of messages.entries()) {
      if (m.content.length > perMessage) {
        throw new PayloadTooLarge(
          `messages[${i}].content is ${m.content.length} characters; the limit is ${perMessage}.`,
          { field: `messages[${i}].content`, limit: perMessage },
        );
      }
      sum += m.content.length;
    }
    if (sum > total) {
      throw new PayloadTooLarge(`messages total ${sum} characters; the limit is ${total}.`, {
        field: 'messages',
        limit: total,
      });
    }
  }

  /**
   * Answers a chat request as one stream of events, as a conversation turn does: `cache` (when the
   * response cache is on), `route` (the catalogue target answering, before its first token), `token` (live, or a cached answer replayed), `usage`,
   * then `done` with the completed chat, or `error`.
   * @param signal cancels the request (the client went away): the engine request is aborted
   * @returns events; `error` carries PayloadTooLarge, ModelNotFound, Engine* errors, RequestAborted
   */
  complete(
    auth: AuthContext,
    command: ChatCompletionCommand,
    signal: AbortSignal = NEVER_ABORTED,
  ): AsyncGenerator<ChatCompletionEvent, void, undefined> {
    return turnEventStream<ChatCompletionPayloads>(signal, (sink) => this.run(auth, command, sink));
  }

  private async run(
    auth: AuthContext,
    command: ChatCompletionCommand,
    sink: TurnSink<ChatCompletionPayloads>,
  ): Promise<CompletedChat> {
    const messages = command.messages.map(
      (m): ChatMessage => ({
        role: m.role === 'developer' ? 'system' : m.role,
        content: typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join('\n'),
      }),
    );
    this.checkLength(messages);
    const model = await this.resolveModel(command.model);
    const last = messages[messages.length - 1];
    const maxTokens = command.maxTokens ?? this.config.INFERENCE_DEFAULT_MAX_TOKENS;
    const control: CacheControl = last.role === 'user' ? (command.cache ?? {}) : { mode: 'bypass' };
    const served = await this.cache.serve(
      {
        scope: chatCompletionsScope(auth.tenantId, model, messages, {
          temperature: command.temperature,
          maxTokens,
          sampling: command.sampling,
        }),
        question: last.content,
        control,
      },
      (miss) => {
        if (miss) sink.emit({ type: 'cache', cache: miss });
        return this.inference.chat({
          model,
          messages,
          maxTokens,
          temperature: command.temperature,
          sampling: command.sampling,
          cacheSalt: this.salts.saltFor(auth.tenantId),
          // Stateless: the provider prompt-cache key is the tenant's (salted, so the tenant id never leaves).
          promptCacheKey: this.salts.saltFor(auth.tenantId),
          signal: sink.signal,
          onProviderRoute: (route) => sink.emit({ type: 'route', route }),
          onToken: (delta) => sink.emit({ type: 'token', delta }),
        });
      },
      sink.signal,
    );
    if (served.cached && served.report) {
      sink.emit({ type: 'cache', cache: served.report });
      for (const delta of replayDeltas(served.result.content)) sink.emit({ type: 'token', delta });
    }
    // A response-cache hit served every prompt token from a cache: report them as cached.
    const usage = served.cached
      ? { ...served.cached.usage, cachedTokens: served.cached.usage.promptTokens }
      : served.result.usage;
    sink.emit({ type: 'usage', usage });
    return {
      id: `chatcmpl-${randomUUID().replace(/-/g, '')}`,
      created: Math.floor(Date.now() / 1000),
      model,
      content: served.result.content,
      finishReason: served.result.finishReason,
      usage: {
        prompt_tokens: usage.promptTokens,
        completion_tokens: usage.completionTokens,
        total_tokens: usage.promptTokens + usage.completionTokens,
        prompt_tokens_details: { cached_tokens: usage.cachedTokens },
      },
      cache: served.report,
      ...(served.cached || !served.result.provider ? {} : { provider: served.result.provider }),
      ...(served.storedEntryId ? { storedEntryId: served.storedEntryId } : {}),
    };
  }
}
