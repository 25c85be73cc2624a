import { type Provider } from '@nestjs/common';
import { InferenceConfig } from '../config/inference.config';

/** The engine replicas' OpenAI-compatible base URLs, and how to stop them if we started them. */
export interface EngineEndpoints {
  baseURLs: string[];
  /** True when they are the in-process simulator (answers are synthetic). */
  simulated: boolean;
  close(): Promise<void>;
}
export const ENGINE_ENDPOINTS = Symbol('ENGINE_ENDPOINTS');

/**
 * Starts a stand-in engine on loopback ports when INFERENCE_ENDPOINTS is unset. Inference owns the
 * contract; the composition root binds it to the engine simulator (src/embedded-engine.module.ts), so
 * this layer never imports the simulator.
 */
export interface LocalEngine {
  /** @returns the started replicas' base URLs (`simulated: true`) and how to stop them */
  start(config: InferenceConfig): Promise<EngineEndpoints>;
}
export const LOCAL_ENGINE = Symbol('LOCAL_ENGINE');

/**
 * INFERENCE_ENDPOINTS when set; otherwise the LOCAL_ENGINE (the simulator, started in-process on
 * loopback ports, with a loud log line that answers are synthetic). Fails the boot when neither is there.
 */
export const engineEndpointsProvider: Provider = {
  provide: ENGINE_ENDPOINTS,
  inject: [InferenceConfig, { token: LOCAL_ENGINE, optional: true }],
  useFactory: async (config: InferenceConfig, local?: LocalEngine): Promise<EngineEndpoints> => {
    if (config.INFERENCE_ENDPOINTS && config.INFERENCE_ENDPOINTS.length > 0) {
      return { baseURLs: config.INFERENCE_ENDPOINTS, simulated: false, close: () => Promise.resolve() };
    }
    if (!local) {
      throw new Error(
        'INFERENCE_ENDPOINTS is unset and this process has no local engine: set INFERENCE_ENDPOINTS',
      );
    }
    return local.start(config);
  },
};
