import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { AnthropicEngineAdapter } from './adapters/anthropic.adapter';
import { OpenAiEngineAdapter } from './adapters/openai.adapter';
import { VllmEngineAdapter } from './adapters/vllm.adapter';
import { ModelCatalogueModule } from './catalogue/model-catalogue.module';
import { DeploymentGuards } from './deployment-guards';
import { EmbeddingsService } from './embeddings.service';
import { EngineEmbeddingsClient } from './engine-embeddings.client';
import { EndpointRouter } from './endpoint-router';
import { ENGINE_ADAPTER, type EngineAdapter } from './engine-adapter';
import { ENGINE_ENDPOINTS, type EngineEndpoints, engineEndpointsProvider } from './engine-endpoints.provider';
import { EngineMetricsService } from './engine-metrics.service';
import { InferenceService, PROVIDER_ADAPTERS, type ProviderAdapters } from './inference.service';

/**
 * The model catalogue (MODEL_CATALOGUE_PATH, or the engine replicas' one model) and its providers: the
 * engine replicas (vLLM + LMCache, or the simulator) behind ENGINE_ADAPTER, and one EngineAdapter per
 * provider in PROVIDER_ADAPTERS — the bindings below are where an adapter is registered (see
 * docs/architecture.md, Extension points, and docs/providers.md).
 */
@Module({
  imports: [ModelCatalogueModule],
  providers: [
    { provide: ENGINE_ADAPTER, useClass: VllmEngineAdapter },
    OpenAiEngineAdapter,
    AnthropicEngineAdapter,
    {
      provide: PROVIDER_ADAPTERS,
      inject: [ENGINE_ADAPTER, OpenAiEngineAdapter, AnthropicEngineAdapter],
      useFactory: (
        vllm: EngineAdapter,
        openai: EngineAdapter,
        anthropic: EngineAdapter,
      ): ProviderAdapters => ({
        vllm,
        openai,
        anthropic,
      }),
    },
    DeploymentGuards,
    engineEndpointsProvider,
    EndpointRouter,
    InferenceService,
    EngineMetricsService,
    EmbeddingsService,
    EngineEmbeddingsClient,
  ],
  exports: [
    InferenceService,
    ModelCatalogueModule,
    DeploymentGuards,
    EndpointRouter,
    ENGINE_ADAPTER,
    EngineMetricsService,
    EmbeddingsService,
    EngineEmbeddingsClient,
    ENGINE_ENDPOINTS,
  ],
})
export class InferenceModule implements OnApplicationShutdown {
  constructor(@Inject(ENGINE_ENDPOINTS) private readonly endpoints: EngineEndpoints) {}

  async onApplicationShutdown(): Promise<void> {
    await this.endpoints.close();
  }
}
