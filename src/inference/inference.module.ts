import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { VllmEngineAdapter } from './adapters/vllm.adapter';
import { EmbeddingsService } from './embeddings.service';
import { EngineEmbeddingsClient } from './engine-embeddings.client';
import { EndpointRouter } from './endpoint-router';
import { ENGINE_ADAPTER } from './engine-adapter';
import { ENGINE_ENDPOINTS, type EngineEndpoints, engineEndpointsProvider } from './engine-endpoints.provider';
import { EngineMetricsService } from './engine-metrics.service';
import { InferenceService } from './inference.service';

/**
 * The engine replicas (vLLM + LMCache, or the simulator) behind one EngineAdapter: the binding of
 * ENGINE_ADAPTER below is where an adapter is registered (see docs/architecture.md, Extension points).
 */
@Module({
  providers: [
    { provide: ENGINE_ADAPTER, useClass: VllmEngineAdapter },
    engineEndpointsProvider,
    EndpointRouter,
    InferenceService,
    EngineMetricsService,
    EmbeddingsService,
    EngineEmbeddingsClient,
  ],
  exports: [
    InferenceService,
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
