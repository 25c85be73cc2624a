import type Anthropic from '@anthropic-ai/sdk';
import type { APIConnectionError, APIError } from '@anthropic-ai/sdk';
import { Injectable, Logger } from '@nestjs/common';
import { InferenceConfig } from '../../config/inference.config';
import type OpenAI from 'openai';
import type {
  EngineAdapter,
  EngineCacheCounters,
  EngineChatEvent,
  EngineChatRequest,
  EngineChatStream,
  EngineEndpoint,
} from '../engine-adapter';
import { EngineBadRequest, EngineTokenizeUnsupported } from '../inference.errors';
import type { TokenizeInput } from '../inference.types';
import { fromAnthropicStream, toAnthropicRequest } from './anthropic-translation';
import { ClientPerEndpoint } from './client-per-endpoint';
import { engineEventsOf, openAiChatBody, translateSdkError } from './vllm.adapter';

/**
 * Anthropic's Messages API through the official `@anthropic-ai/sdk`: the Chat Completions request is
 * translated (anthropic-translation.ts) with `cache_control` breakpoints at the end of the stable prefix,
 * on the last history message and on the new message; the event stream is translated back to Chat
 * Completions chunks, so usage (`cache_read_input_tokens` -> cached tokens) and stop reasons reach the
 * caller as from any engine. https://docs.anthropic.com/en/api/messages
 *
 * The client's OpenAI fields (`EngineChatRequest.extra`) are translated where the Messages API has an
 * equivalent: `tools`, `tool_choice`, `parallel_tool_calls`, tool messages and assistant `tool_calls`,
 * `stop`, `top_p`, `user` (-> `metadata.user_id`); tool_use answers come back as `tool_calls` with
 * `finish_reason: "tool_calls"`. `n > 1` is refused (EngineBadRequest naming `n`: Anthropic answers one
 * choice). Everything else is dropped: ANTHROPIC_DROPPED_FIELDS and unknown vendor fields.
 */
/**
 * OpenAI Chat Completions fields the Messages API has no equivalent for; the Anthropic adapter drops them
 * (docs/providers.md, "Which OpenAI fields each provider supports").
 */
export const ANTHROPIC_DROPPED_FIELDS = [
  'response_format',
  'logprobs',
  'top_logprobs',
  'seed',
  'frequency_penalty',
  'presence_penalty',
  'logit_bias',
  'metadata',
  'store',
  'reasoning_effort',
  'service_tier',
  'prompt_cache_key',
  'modalities',
  'audio',
  'prediction',
  'web_search_options',
] as const;

/**
 * Anthropic's Messages API behind the EngineAdapter seam, with the official `@anthropic-ai/sdk` (one client
 * per endpoint, SDK retries off: InferenceService owns fallbacks). Chat Completions requests are translated by
 * anthropic-translation.ts (tools, tool results, stop reasons, usage incl. `cache_read_input_tokens`, and
 * `cache_control` breakpoints at the stable prefix and the last history message); fields Anthropic has no
 * counterpart for are dropped (ANTHROPIC_DROPPED_FIELDS, docs/providers.md). No `/tokenize` and no `/metrics`.
 * No `chatAnswer`: a caller that reads the answer whole is still answered through the stream (the Messages
 * API's non-streamed answer would need its own translation; InferenceService falls back to `chatStream`).
 * See https://docs.anthropic.com/en/api/messages.
 */
@Injectable()
export class AnthropicEngineAdapter implements EngineAdapter {
  readonly name = 'anthropic';
  private readonly logger = new Logger('Inference');
  /** The SDK and its clients, loaded on the first call to an Anthropic endpoint (none configured: never). */
  private sdk?: Promise<{
    module: typeof import('@anthropic-ai/sdk');
    clients: ClientPerEndpoint<Anthropic>;
  }>;

  constructor(private readonly config: InferenceConfig) {}

  private async client(endpoint: EngineEndpoint): Promise<Anthropic> {
    this.sdk ??= import('@anthropic-ai/sdk').then((module) => ({
      module,
      clients: new ClientPerEndpoint(
        (options) => new module.default(options),
        this.config.INFERENCE_TIMEOUT_MS,
      ),
    }));
    return (await this.sdk).clients.get(endpoint);
  }

  async chatStream(
    endpoint: EngineEndpoint,
    request: EngineChatRequest,
    signal: AbortSignal,
  ): Promise<EngineChatStream> {
    const n = request.extra?.n;
    if (typeof n === 'number' && n > 1) {
      throw new EngineBadRequest(
        `n: ${endpoint.id} is an Anthropic deployment, which answers one choice; send n: 1 (or omit it).`,
        { field: 'n', replica: endpoint.id },
      );
    }
    const body = toAnthropicRequest(openAiChatBody(request), { cacheBreakpoints: true });
    try {
      const client = await this.client(endpoint);
      const { data: stream } = await client.messages
        .create({ ...body, stream: true }, { signal })
        .withResponse();
      const chunks = fromAnthropicStream(stream, Math.floor(Date.now() / 1000));
      return { engineTimings: {}, events: this.translateEvents(chunks, endpoint) };
    } catch (e) {
      throw await this.translate(e, endpoint, 0);
    }
  }

  private async *translateEvents(
    chunks: AsyncIterable<OpenAI.ChatCompletionChunk>,
    endpoint: EngineEndpoint,
  ): AsyncGenerator<EngineChatEvent> {
    const counted = { deltas: 0 };
    try {
      yield* engineEventsOf(chunks, counted);
    } catch (e) {
      throw await this.translate(e, endpoint, counted.deltas);
    }
  }

  tokenize(endpoint: EngineEndpoint, _model: string, _input: TokenizeInput): Promise<number[]> {
    return Promise.reject(
      new EngineTokenizeUnsupported(`The Anthropic API at ${endpoint.id} has no /tokenize.`, {
        replica: endpoint.id,
      }),
    );
  }

  async models(endpoint: EngineEndpoint, timeoutMs: number): Promise<string[]> {
    try {
      const client = await this.client(endpoint);
      const page = await client.models.list({}, { timeout: timeoutMs, maxRetries: 0 });
      return page.data.map((m) => m.id);
    } catch (e) {
      throw await this.translate(e, endpoint, undefined);
    }
  }

  async health(endpoint: EngineEndpoint, timeoutMs: number): Promise<void> {
    await this.models(endpoint, timeoutMs);
  }

  scrapeMetrics(endpoint: EngineEndpoint): Promise<EngineCacheCounters> {
    return Promise.reject(new Error(`The Anthropic API at ${endpoint.id} exposes no prefix-cache metrics.`));
  }

  /** The SDK's error as an engine error (the SDK is loaded by then: only its calls throw its errors). */
  private async translate(
    e: unknown,
    endpoint: EngineEndpoint,
    receivedTokens: number | undefined,
  ): Promise<Error> {
    const sdk = await this.sdk?.catch(() => undefined);
    if (!sdk) return e instanceof Error ? e : new Error(String(e));
    const { APIConnectionTimeoutError, APIUserAbortError, APIConnectionError, APIError } = sdk.module;
    return translateSdkError(e, endpoint, receivedTokens, {
      timeoutMs: endpoint.timeoutMs ?? this.config.INFERENCE_TIMEOUT_MS,
      logger: this.logger,
      isConnectionTimeout: (x) => x instanceof APIConnectionTimeoutError,
      isUserAbort: (x) => x instanceof APIUserAbortError,
      isConnection: (x): x is APIConnectionError => x instanceof APIConnectionError,
      isApiError: (x): x is APIError => x instanceof APIError,
    });
  }
}
