import { Injectable } from '@nestjs/common';
import type OpenAI from 'openai';
import type { EngineCacheCounters, EngineChatRequest, EngineEndpoint } from '../engine-adapter';
import { EngineTokenizeUnsupported } from '../inference.errors';
import { openAiChatBody, VllmEngineAdapter } from './vllm.adapter';

/**
 * OpenAI and any OpenAI-compatible API (Azure OpenAI's v1 endpoint, Together, Groq, a LiteLLM proxy) through
 * the `openai` SDK: the vLLM adapter without vLLM's extensions (`cache_salt`, `/tokenize`, `/metrics`), plus
 * OpenAI's prompt caching key: `prompt_cache_key` is the conversation (the tenant for stateless calls), so
 * requests sharing a stable prefix reach the same cache; cached prompt tokens come back in
 * `usage.prompt_tokens_details.cached_tokens` (https://platform.openai.com/docs/guides/prompt-caching).
 */
@Injectable()
export class OpenAiEngineAdapter extends VllmEngineAdapter {
  override readonly name: string = 'openai';
  protected override readonly streamsThroughSdk: boolean = true;

  protected override chatBody(request: EngineChatRequest): OpenAI.ChatCompletionCreateParamsStreaming {
    return {
      ...openAiChatBody(request),
      ...(request.promptCacheKey ? { prompt_cache_key: request.promptCacheKey } : {}),
    };
  }

  override tokenize(endpoint: EngineEndpoint): Promise<number[]> {
    return Promise.reject(
      new EngineTokenizeUnsupported(`The OpenAI-compatible API at ${endpoint.id} has no /tokenize.`, {
        replica: endpoint.id,
      }),
    );
  }

  override scrapeMetrics(endpoint: EngineEndpoint): Promise<EngineCacheCounters> {
    return Promise.reject(
      new Error(`The OpenAI-compatible API at ${endpoint.id} exposes no prefix-cache metrics.`),
    );
  }
}
