import { AnthropicEngineAdapter } from '../../src/inference/adapters/anthropic.adapter';
import { OpenAiEngineAdapter } from '../../src/inference/adapters/openai.adapter';
import type { ModelCatalogueData } from '../../src/inference/catalogue/model-catalogue';
import { ModelCatalogue } from '../../src/inference/catalogue/model-catalogue.service';
import { DeploymentGuards } from '../../src/inference/deployment-guards';
import type { EndpointRouter } from '../../src/inference/endpoint-router';
import type { EngineAdapter } from '../../src/inference/engine-adapter';
import { InferenceService } from '../../src/inference/inference.service';
import type { InferenceConfig } from '../../src/config/inference.config';

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
