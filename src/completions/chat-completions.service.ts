import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { AuthContext } from '../auth/api-key.service';
import { TenantSaltService } from '../auth/tenant-salt.service';
import { replayDeltas } from '../caching/replay';
import { ResponseCache, type ServeResult } from '../caching/response-cache.service';
import type { CacheControl, ResponseCacheReport, ResponseCacheScope } from '../caching/response-cache.types';
import { canonicalJson, contextFingerprint } from '../caching/scope';
import { PayloadTooLarge } from '../common/domain-error';
import { NEVER_ABORTED, runTurn, type TurnProgressEvent, type TurnSink } from '../common/turn-events';
import { AppConfig } from '../config/app.config';
import { InferenceConfig } from '../config/inference.config';
import { InferenceService } from '../inference/inference.service';
import type {
  ChatChoice,
  ChatRequest,
  ChatResult,
  ChatUsage,
  ChoiceDelta,
  ProviderRoute,
  WireChatMessage,
} from '../inference/inference.types';
import { EngineEmbeddingsClient } from '../inference/engine-embeddings.client';
import { type ObservedTurn, TurnTelemetryService } from '../observability/turn-telemetry.service';
import { generationRouteMetadata, type TurnTrace } from '../observability/turn-trace';
import { UsageRecorder } from '../usage/usage-recorder.service';

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
  messages: readonly WireChatMessage[],
  params: {
    temperature?: number;
    maxTokens: number;
    sampling?: ChatRequest['sampling'];
    extra?: ChatRequest['extra'];
  },
): ResponseCacheScope {
  return {
    tenantId,
    agent: CHAT_COMPLETIONS_AGENT,
    model,
    templateVersion: CHAT_COMPLETIONS_TEMPLATE,
    params: {
      temperature: params.temperature ?? null,
      maxTokens: params.maxTokens,
      ...params.sampling,
      // Every other field that can change the answer: the tool set, tool_choice, response_format, ...
      ...answerShapingFields(params.extra),
    },
    context: contextFingerprint({
      history: messages.slice(0, -1).map((m) => ({
        role: m.role,
        // A tool call or a tool's answer is part of the context the answer depends on.
        content:
          m.tool_calls?.length || m.tool_call_id
            ? `${m.content}\u0000${canonicalJson({ calls: m.tool_calls ?? null, id: m.tool_call_id ?? null })}`
            : m.content,
      })),
    }),
  };
}

/** Extra request fields that never change the answer, so they stay out of the cache scope. */
const NOT_ANSWER_SHAPING = new Set(['user', 'metadata', 'store']);

/** The extra request fields that change the answer (all but `user`, `metadata`, `store`). */
function answerShapingFields(extra: ChatRequest['extra']): Record<string, unknown> {
  if (!extra) return {};
  return Object.fromEntries(Object.entries(extra).filter(([k]) => !NOT_ANSWER_SHAPING.has(k)));
}

/**
 * Why a chat request must not be answered from, nor stored in, the response cache (null when it may):
 * a replay carries one choice (its text, or its tool calls) and its finish reason only, so `n` > 1 and
 * `logprobs` are never replayed; and only an answer to a user message is cached (not the answer after a
 * tool's result). Tool calls replay only to the identical tool set: it is in the scope fingerprint.
 * See docs/response-cache.md, "OpenAI-compatible endpoint".
 */
export function uncacheableReason(
  messages: readonly WireChatMessage[],
  extra: ChatRequest['extra'],
): string | null {
  const n = extra?.n;
  if (typeof n === 'number' && n > 1) return 'n > 1';
  if (extra?.logprobs === true) return 'logprobs';
  if (messages[messages.length - 1]?.role !== 'user') return 'last message not from the user';
  return null;
}

/** The wire messages of a request: `developer` as `system`, text parts joined by newlines, null content as ''. */
function wireMessages(messages: ChatCompletionCommand['messages']): WireChatMessage[] {
  return messages.map(
    (m): WireChatMessage => ({
      role: m.role === 'developer' ? 'system' : m.role,
      content:
        m.content === undefined || m.content === null
          ? ''
          : typeof m.content === 'string'
            ? m.content
            : m.content.map((p) => p.text).join('\n'),
      ...(m.name !== undefined ? { name: m.name } : {}),
      ...(m.tool_calls?.length ? { tool_calls: m.tool_calls } : {}),
      ...(m.tool_call_id !== undefined ? { tool_call_id: m.tool_call_id } : {}),
    }),
  );
}

/** A stateless chat request, already validated. */
export interface ChatCompletionCommand {
  model: string;
  messages: {
    role: 'system' | 'developer' | 'user' | 'assistant' | 'tool';
    content?: string | { type: 'text'; text: string }[] | null;
    name?: string;
    tool_calls?: WireChatMessage['tool_calls'];
    tool_call_id?: string;
  }[];
  temperature?: number;
  maxTokens?: number;
  sampling?: ChatRequest['sampling'];
  /** Other OpenAI and vendor fields, passed to the engine (ChatRequest.extra). */
  extra?: ChatRequest['extra'];
  cache?: CacheControl;
  /** The HTTP request id (usage record, logs). */
  requestId?: string;
  /** The client reads the answer as a stream (telemetry). */
  streamed?: boolean;
  /** `exactHit` missed the exact key of this request an instant ago: the response cache does not ask again. */
  exactMissed?: boolean;
}

/**
 * The payloads of a chat completion's events (see TurnEvent). `route`: the catalogue target that answers
 * and the attempts before it, emitted before its first token (absent for a response-cache hit). `token`
 * carries the first choice's text; `choice` the other pieces of an OpenAI answer (tool-call fragments,
 * the text of choices past the first, logprobs).
 */
export interface ChatCompletionPayloads {
  route: ProviderRoute;
  citations: never;
  cache: ResponseCacheReport;
  usage: ChatUsage;
  choice: ChoiceDelta;
  done: CompletedChat;
}

/** An event of a chat completion before its end (`done` or `error`). */
export type ChatCompletionProgressEvent = TurnProgressEvent<ChatCompletionPayloads>;

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
  /** Every choice (one on a response-cache hit). */
  choices: ChatChoice[];
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
    private readonly embeddings: EngineEmbeddingsClient,
    private readonly telemetry: TurnTelemetryService,
    private readonly usage: UsageRecorder,
  ) {}

  /**
   * Ids of the models served: the catalogue's public model names (without a catalogue file, the engine's
   * chat model), then the engine's embedding models (when it lists any).
   */
  async models(): Promise<string[]> {
    const chat = await this.inference.modelNames();
    const embedding = await this.embeddings.models().catch((): string[] => []);
    return [...chat, ...embedding.filter((id) => !chat.includes(id))];
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
  checkLength(messages: readonly { content: string }[]): void {
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
   * Answers a chat request, emitting its events to `onEvent` as a conversation turn streams them: `cache`
   * (when the response cache is on), `route` (the catalogue target answering, before its first token),
   * `token` (the first choice's text, live or a cached answer replayed) and `choice` (tool-call fragments,
   * other choices, logprobs), then `usage`. Each event is handed over as it is emitted, with no queue
   * (`runTurn`); without `onEvent` (a non-streamed request) none is passed on. Counted like a turn:
   * Prometheus and Langfuse (TurnTelemetryService, kind `chat.completions`) and a usage record (endpoint
   * `chat.completions`).
   * @param signal cancels the request (the client went away): the engine request is aborted
   * @returns the completed chat
   * @throws PayloadTooLarge, ModelNotFound, Engine* errors, RequestAborted; or what `onEvent` throws
   */
  complete(
    auth: AuthContext,
    command: ChatCompletionCommand,
    signal: AbortSignal = NEVER_ABORTED,
    onEvent?: (event: ChatCompletionProgressEvent) => void,
  ): Promise<CompletedChat> {
    return runTurn<ChatCompletionPayloads>(signal, (sink) => this.run(auth, command, sink), onEvent);
  }

  /**
   * The answer to a request when it is an exact response-cache hit (otherwise the caller runs `complete`):
   * the fast path of ExactHitHook, for requests the client does not stream. On a hit it does what `complete` does for one — Prometheus and Langfuse (TurnTelemetryService,
   * kind `chat.completions`, with its `response-cache` span), the usage record — and emits no events;
   * on a miss it records nothing.
   * @returns the completed chat (as `complete` returns it for the same hit); `miss` when the exact key holds
   *   nothing fresh (the caller passes `exactMissed` to `complete`, which then does not look it up again);
   *   null when nothing was looked up (not cacheable: n > 1, logprobs, last message not from the user;
   *   `bypass` / `no-cache`) or the lookup failed
   * @throws PayloadTooLarge, ModelNotFound before any lookup (the caller falls through: `complete` throws them)
   */
  async exactHit(auth: AuthContext, command: ChatCompletionCommand): Promise<CompletedChat | 'miss' | null> {
    const messages = wireMessages(command.messages);
    this.checkLength(messages);
    const model = await this.resolveModel(command.model);
    if (uncacheableReason(messages, command.extra) !== null) return null;
    const last = messages[messages.length - 1];
    const started = performance.now();
    let observed: ObservedTurn | undefined;
    const served = await this.cache.exactHit(
      {
        scope: this.scopeOf(auth, command, model, messages),
        question: last.content,
        control: command.cache ?? {},
      },
      () => {
        observed = this.observe(auth, command, last.content);
        return observed.trace;
      },
    );
    if (served === null || served === 'miss') return served;
    if (!observed) return null;
    const done = this.completedFrom(served.hit, model);
    this.record(auth, command, done, observed, performance.now() - started);
    return done.completed;
  }

  /** Starts the request's telemetry (Prometheus, the Langfuse trace), kind `chat.completions`. */
  private observe(auth: AuthContext, command: ChatCompletionCommand, content: string): ObservedTurn {
    return this.telemetry.begin({
      tenantId: auth.tenantId,
      kind: 'chat.completions',
      content,
      streamed: command.streamed === true,
    });
  }

  /** The response-cache scope of a request (chatCompletionsScope with the request's parameters). */
  private scopeOf(
    auth: AuthContext,
    command: ChatCompletionCommand,
    model: string,
    messages: readonly WireChatMessage[],
  ): ResponseCacheScope {
    return chatCompletionsScope(auth.tenantId, model, messages, {
      temperature: command.temperature,
      maxTokens: command.maxTokens ?? this.config.INFERENCE_DEFAULT_MAX_TOKENS,
      sampling: command.sampling,
      extra: command.extra,
    });
  }

  private async run(
    auth: AuthContext,
    command: ChatCompletionCommand,
    sink: TurnSink<ChatCompletionPayloads>,
  ): Promise<CompletedChat> {
    const messages = wireMessages(command.messages);
    this.checkLength(messages);
    const model = await this.resolveModel(command.model);
    const last = messages[messages.length - 1];
    const started = performance.now();
    const observed = this.observe(auth, command, last.content);
    try {
      const done = await this.answer(auth, command, model, messages, observed.trace, sink);
      this.record(auth, command, done, observed, performance.now() - started);
      return done.completed;
    } catch (e) {
      observed.fail(e);
      throw e;
    }
  }

  /** Reports a finished request: Prometheus and Langfuse (TurnTelemetryService), then the usage ledger. */
  private record(
    auth: AuthContext,
    command: ChatCompletionCommand,
    done: { completed: CompletedChat; result: ChatResult; engineUsage: ChatUsage },
    observed: ObservedTurn,
    totalMs: number,
  ): void {
    const { completed, result, engineUsage } = done;
    const response = completed.cache;
    observed.succeed(
      {
        content: completed.content,
        model: completed.model,
        replica: result.replica,
        finishReason: completed.finishReason,
        usage: engineUsage,
        // A whole answer has no inter-token latency to report (its TTFT is the time to the whole answer).
        timings: result.wholeAnswer ? { ...result.timings, itlMs: undefined } : result.timings,
        ...(response ? { cache: { response } } : {}),
      },
      { totalMs },
    );
    const hit = response?.hit === true;
    this.usage.record({
      tenantId: auth.tenantId,
      keyId: auth.keyId,
      requestId: command.requestId ?? completed.id,
      endpoint: 'chat.completions',
      model: completed.model,
      deployment: result.replica,
      promptTokens: engineUsage.promptTokens,
      cachedTokens: engineUsage.cachedTokens,
      completionTokens: engineUsage.completionTokens,
      ...(hit
        ? {
            cacheLayer: response?.type ?? 'exact',
            replaced: {
              promptTokens: completed.usage.prompt_tokens,
              completionTokens: completed.usage.completion_tokens,
            },
          }
        : {}),
      latencyMs: totalMs,
      ttftMs: result.timings.ttftMs,
    });
  }

  private async answer(
    auth: AuthContext,
    command: ChatCompletionCommand,
    model: string,
    messages: WireChatMessage[],
    trace: TurnTrace,
    sink: TurnSink<ChatCompletionPayloads>,
  ): Promise<{ completed: CompletedChat; result: ChatResult; engineUsage: ChatUsage }> {
    const last = messages[messages.length - 1];
    const maxTokens = command.maxTokens ?? this.config.INFERENCE_DEFAULT_MAX_TOKENS;
    const control: CacheControl =
      uncacheableReason(messages, command.extra) === null ? (command.cache ?? {}) : { mode: 'bypass' };
    const served = await this.cache.serve(
      {
        scope: this.scopeOf(auth, command, model, messages),
        question: last.content,
        control,
        trace,
        ...(command.exactMissed ? { exactMissed: true } : {}),
      },
      async (miss) => {
        if (miss) sink.emit({ type: 'cache', cache: miss });
        const generation = trace.generation('engine', messages, { model });
        const salt = this.salts.saltFor(auth.tenantId);
        let first = true;
        const firstToken = (): void => {
          if (first) generation.firstToken();
          first = false;
        };
        try {
          const result = await this.inference.chat({
            model,
            messages,
            maxTokens,
            temperature: command.temperature,
            sampling: command.sampling,
            ...(command.extra ? { extra: command.extra } : {}),
            cacheSalt: salt,
            // Stateless: the provider prompt-cache key is the tenant's (salted, so the tenant id never leaves).
            promptCacheKey: salt,
            signal: sink.signal,
            // A client that does not stream gets one JSON answer from the engine: no stream to parse.
            wholeAnswer: command.streamed !== true,
            onProviderRoute: (route) => sink.emit({ type: 'route', route }),
            onToken: (delta) => {
              firstToken();
              sink.emit({ type: 'token', delta });
            },
            onChoiceDelta: (delta) => {
              // The first choice's text went out as `token`; finish reasons come with `done`.
              if (delta.type === 'finish') return;
              if (delta.type === 'content' && delta.choice === 0 && !delta.logprobs) return;
              firstToken();
              sink.emit({ type: 'choice', choice: delta });
            },
          });
          generation.end({
            output: result.choices?.length ? result.choices : result.content,
            model: result.model,
            usage: result.usage,
            metadata: generationRouteMetadata(result),
          });
          return result;
        } catch (e) {
          generation.end({ error: e instanceof Error ? e.message : String(e) });
          throw e;
        }
      },
      sink.signal,
    );
    return this.completedFrom(served, model, (event) => sink.emit(event));
  }

  /**
   * The completed chat of what the cache served, and the events a hit replays to `emit` (its text word by
   * word, its tool calls, then usage; none without `emit`).
   */
  private completedFrom(
    served: ServeResult,
    model: string,
    emit?: (event: ChatCompletionProgressEvent) => void,
  ): { completed: CompletedChat; result: ChatResult; engineUsage: ChatUsage } {
    let choices = served.result.choices;
    if (served.cached && served.report) {
      emit?.({ type: 'cache', cache: served.report });
      if (emit) for (const delta of replayDeltas(served.result.content)) emit({ type: 'token', delta });
      // A replayed tool call gets fresh ids: the client matches its tool messages to them.
      choices = choices?.map((c) => ({
        ...c,
        toolCalls: c.toolCalls.map((call) => ({ ...call, id: `call_${randomUUID().replace(/-/g, '')}` })),
      }));
      for (const [index, call] of (choices?.[0]?.toolCalls ?? []).entries()) {
        emit?.({
          type: 'choice',
          choice: {
            type: 'tool_call',
            choice: 0,
            index,
            id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
          },
        });
      }
    }
    // A response-cache hit served every prompt token from a cache: report them as cached.
    const usage = served.cached
      ? { ...served.cached.usage, cachedTokens: served.cached.usage.promptTokens }
      : served.result.usage;
    const completed: CompletedChat = {
      id: `chatcmpl-${randomUUID().replace(/-/g, '')}`,
      created: Math.floor(Date.now() / 1000),
      model,
      content: served.result.content,
      finishReason: served.result.finishReason,
      choices: choices?.length
        ? choices
        : [
            {
              index: 0,
              content: served.result.content,
              toolCalls: [],
              logprobs: null,
              finishReason: served.result.finishReason,
            },
          ],
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
    emit?.({ type: 'usage', usage });
    // What the engine processed: nothing on a response-cache hit (its usage is zero).
    return { completed, result: served.result, engineUsage: served.result.usage };
  }
}
