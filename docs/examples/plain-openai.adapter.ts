import { Injectable } from '@nestjs/common';
import { VllmEngineAdapter } from '../../src/inference/adapters/vllm.adapter';
import type { EngineChatRequest, EngineChatStream, EngineEndpoint } from '../../src/inference/engine-adapter';
import { EngineTokenizeUnsupported } from '../../src/inference/inference.errors';

/** Any OpenAI-compatible server: the vLLM adapter without `cache_salt` and `/tokenize`. */
@Injectable()
export class PlainOpenAiAdapter extends VllmEngineAdapter {
  override readonly name = 'openai-compatible';
  override chatStream(
    endpoint: EngineEndpoint,
    request: EngineChatRequest,
    signal: AbortSignal,
  ): Promise<EngineChatStream> {
    return super.chatStream(endpoint, { ...request, cacheSalt: undefined }, signal);
  }
  override tokenize(endpoint: EngineEndpoint): Promise<number[]> {
    return Promise.reject(new EngineTokenizeUnsupported(`${endpoint.id} has no /tokenize`));
  }
}
