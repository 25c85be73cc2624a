import { AnthropicEngineAdapter } from '../../src/inference/adapters/anthropic.adapter';
import { OpenAiEngineAdapter } from '../../src/inference/adapters/openai.adapter';
import type { ModelCatalogueData } from '../../src/inference/catalogue/model-catalogue';
import { ModelCatalogue } from '../../src/inference/catalogue/model-catalogue.service';
import { DeploymentGuards } from '../../src/inference/deployment-guards';
import { EndpointRouter } from '../../src/inference/endpoint-router';
import type { EngineAdapter } from '../../src/inference/engine-adapter';
import { InferenceService } from '../../src/inference/inference.service';
import type { ContextConfig } from '../../src/config/context.config';
import type { InferenceConfig } from '../../src/config/inference.config';
import { TokenizerService } from '../../src/context/tokenizer.service';
import { FakeEngineAdapter } from '../fakes/fake-engine-adapter';

/**
 * An InferenceService as InferenceModule builds it: `engine` on the replicas, the real OpenAI and
 * Anthropic adapters for catalogue deployments, and `catalogue` (null = the replicas' one model).
 */
export function inferenceService(
  router: EndpointRouter,
  config: InferenceConfig,
  engine: EngineAdapter,
  catalogue: ModelCatalogueData | null = null,
): InferenceService {
  return new InferenceService(
    router,
    config,
    engine,
    new ModelCatalogue(config, {}, catalogue),
    new DeploymentGuards(config),
    { vllm: engine, openai: new OpenAiEngineAdapter(config), anthropic: new AnthropicEngineAdapter(config) },
  );
}

/**
 * The real TokenizerService over the real InferenceService and a FakeEngineAdapter on one replica (its
 * tokenizer: one token per character, a fixed chat-template overhead): counts are exact.
 */
export function fakeEngineTokenizer(inferenceConfig: InferenceConfig, contextConfig: ContextConfig) {
  const engine = new FakeEngineAdapter();
  const router = new EndpointRouter(
    { baseURLs: ['http://r0:8000/v1'], simulated: true, close: () => Promise.resolve() },
    inferenceConfig,
    engine,
  );
  const tokenizer = new TokenizerService(inferenceService(router, inferenceConfig, engine), contextConfig);
  return { tokenizer, engine };
}
