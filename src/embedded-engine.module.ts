import { Global, Logger, Module } from '@nestjs/common';
import type { InferenceConfig } from './config/inference.config';
import { type EngineEndpoints, LOCAL_ENGINE, type LocalEngine } from './inference/engine-endpoints.provider';
import { PrefixLimitTracker } from './simulator/prefix-limit';
import { startEngineSimulatorCluster } from './simulator/simulator.server';

/** The engine simulator as the LOCAL_ENGINE: SIMULATOR_REPLICAS replicas in-process on loopback ports. */
export const simulatorEngine: LocalEngine = {
  async start(config: InferenceConfig): Promise<EngineEndpoints> {
    const cluster = await startEngineSimulatorCluster(config.SIMULATOR_REPLICAS, {
      timing: { timeScale: config.SIMULATOR_TIME_SCALE },
      repliesFile: config.SIMULATOR_REPLIES_FILE,
      maxModelLen: config.INFERENCE_MAX_CONTEXT_TOKENS,
      blockSize: config.INFERENCE_BLOCK_SIZE,
      enablePrefixCaching: config.SIMULATOR_PREFIX_CACHING,
      lmcache: { enabled: config.SIMULATOR_LMCACHE },
      ...(config.SIMULATOR_PREFIX_LIMIT
        ? { prefixLimit: new PrefixLimitTracker(config.INFERENCE_BLOCK_SIZE) }
        : {}),
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

/**
 * Binds inference's LOCAL_ENGINE to the engine simulator, at the composition root: the inference
 * layer does not import the simulator. Global, so every InferenceModule sees it; import it once
 * (AppModule, a command-line tool, a test harness).
 */
@Global()
@Module({
  providers: [{ provide: LOCAL_ENGINE, useValue: simulatorEngine }],
  exports: [LOCAL_ENGINE],
})
export class EmbeddedEngineModule {}
