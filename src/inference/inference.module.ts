import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { EmbeddingsService } from './embeddings.service';
import { EndpointRouter } from './endpoint-router';
import { ENGINE_ENDPOINTS, type EngineEndpoints, engineEndpointsProvider } from './engine-endpoints.provider';
import { EngineMetricsService } from './engine-metrics.service';
import { InferenceService } from './inference.service';

/** OpenAI-compatible client over the engine replicas (vLLM + LMCache, or the simulator). */
@Module({
  providers: [
    engineEndpointsProvider,
    EndpointRouter,
    InferenceService,
    EngineMetricsService,
    EmbeddingsService,
  ],
  exports: [InferenceService, EndpointRouter, EngineMetricsService, EmbeddingsService, ENGINE_ENDPOINTS],
})
export class InferenceModule implements OnApplicationShutdown {
  constructor(@Inject(ENGINE_ENDPOINTS) private readonly endpoints: EngineEndpoints) {}

  async onApplicationShutdown(): Promise<void> {
    await this.endpoints.close();
  }
}
