import { Logger, type Provider } from '@nestjs/common';
import { InferenceConfig } from '../config/inference.config';
import { startEngineSimulatorCluster } from '../simulator/simulator.server';

/** The engine replicas' OpenAI-compatible base URLs, and how to stop them if we started them. */
export interface EngineEndpoints {
  baseURLs: string[];
  /** True when they are the in-process simulator (answers are synthetic). */
  simulated: boolean;
  close(): Promise<void>;
}
export const ENGINE_ENDPOINTS = Symbol('ENGINE_ENDPOINTS');

/**
 * INFERENCE_ENDPOINTS when set; otherwise the engine simulator, started in-process on loopback
 * ports (SIMULATOR_REPLICAS of them), with a loud log line that answers are synthetic.
 */
export const engineEndpointsProvider: Provider = {
  provide: ENGINE_ENDPOINTS,
  inject: [InferenceConfig],
  useFactory: async (config: InferenceConfig): Promise<EngineEndpoints> => {
    if (config.INFERENCE_ENDPOINTS && config.INFERENCE_ENDPOINTS.length > 0) {
      return { baseURLs: config.INFERENCE_ENDPOINTS, simulated: false, close: () => Promise.resolve() };
    }
    const cluster = await startEngineSimulatorCluster(config.SIMULATOR_REPLICAS, {
      timing: { timeScale: config.SIMULATOR_TIME_SCALE },
      repliesFile: config.SIMULATOR_REPLIES_FILE,
      maxModelLen: config.INFERENCE_MAX_CONTEXT_TOKENS,
      blockSize: config.INFERENCE_BLOCK_SIZE,
      enablePrefixCaching: config.SIMULATOR_PREFIX_CACHING,
      lmcache: { enabled: config.SIMULATOR_LMCACHE },
    });
    new Logger('Inference').warn(
      `INFERENCE_ENDPOINTS is unset: started the ENGINE SIMULATOR in-process (${cluster.replicas
        .map((r) => r.baseURL)
        .join(', ')}). ANSWERS ARE SYNTHETIC — set INFERENCE_ENDPOINTS to real vLLM replicas.`,
    );
    return {
      baseURLs: cluster.replicas.map((r) => r.baseURL),
      simulated: true,
      close: () => cluster.close(),
    };
  },
};
