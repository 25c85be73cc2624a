import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { EndpointRouter } from './endpoint-router';
import { ENGINE_ENDPOINTS, type EngineEndpoints, engineEndpointsProvider } from './engine-endpoints.provider';
import { InferenceService } from './inference.service';

/** OpenAI-compatible client over the engine replicas (vLLM + LMCache, or the simulator). */
@Module({
  providers: [engineEndpointsProvider, EndpointRouter, InferenceService],
  exports: [InferenceService, EndpointRouter, ENGINE_ENDPOINTS],
})
export class InferenceModule implements OnApplicationShutdown {
  constructor(@Inject(ENGINE_ENDPOINTS) private readonly endpoints: EngineEndpoints) {}

  async onApplicationShutdown(): Promise<void> {
    await this.endpoints.close();
  }
}
