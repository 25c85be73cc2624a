import { Command, InvalidArgumentError, Option } from 'commander';

import { type SimulatorOptionsInput } from './simulator.options';
import { type RunningSimulatorCluster, startEngineSimulatorCluster } from './simulator.server';

/**
 * CLI of the engine simulator: `npm run engine:sim -- --port 8001 [--replicas 2] ...`.
 * Every flag maps to a `SimulatorOptions` field; unset flags keep the documented defaults.
 */
interface CliFlags {
  port: number;
  host: string;
  replicas: number;
  model?: string;
  maxModelLen?: number;
  blockSize?: number;
  gpuBlocks?: number;
  prefixCaching: boolean;
  lmcache: boolean;
  lmcacheChunkSize?: number;
  lmcacheCpuTokens?: number;
  lmcacheRemoteRedis?: string;
  lmcacheRemotePrefix?: string;
  timeScale?: number;
  replies?: string;
  errorRate?: number;
  errorStatus?: number;
  cutAfter?: number;
  stallMs?: number;
  maxNumSeqs?: number;
  seed?: number;
  log: boolean;
}

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('expected an integer');
  return n;
}

function number(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError('expected a number');
  return n;
}

export function buildCli(): Command {
  return new Command('engine-sim')
    .description(
      'vLLM + LMCache engine SIMULATOR for machines without a GPU. A test double of the engine: ' +
        'answers are synthetic, not produced by a language model.',
    )
    .option('--port <port>', 'first port to listen on (0 = ephemeral)', integer, 8001)
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--replicas <n>', 'replicas on consecutive ports from --port', integer, 1)
    .option('--model <id>', 'served model id (must contain "sim")')
    .option('--max-model-len <tokens>', 'context window in tokens', integer)
    .option('--block-size <tokens>', 'tokens per KV block', integer)
    .option('--gpu-blocks <n>', 'GPU KV blocks in the pool', integer)
    .option('--no-prefix-caching', 'disable vLLM automatic prefix caching')
    .option('--no-lmcache', 'disable the LMCache tiers')
    .option('--lmcache-chunk-size <tokens>', 'LMCache chunk size in tokens', integer)
    .option('--lmcache-cpu-tokens <tokens>', 'LMCache local CPU tier capacity in tokens', integer)
    .option('--lmcache-remote-redis <url>', 'Redis URL of a remote tier shared by replicas')
    .option('--lmcache-remote-prefix <prefix>', 'key prefix of the remote tier')
    .option('--time-scale <factor>', 'multiplies every simulated sleep (0 = instant)', number)
    .option('--replies <jsonl>', 'JSONL of recorded dialogues to replay assistant replies from')
    .option('--error-rate <p>', 'probability of an injected error before any token', number)
    .option('--error-status <status>', 'HTTP status of injected errors', integer)
    .option('--cut-after <tokens>', 'drop the connection after this many tokens', integer)
    .option('--stall-ms <ms>', 'wall-clock delay before the first token', number)
    .option('--max-num-seqs <n>', 'continuous batching bound', integer)
    .option('--seed <n>', 'seed of replies and fault draws', integer)
    .addOption(new Option('--log', 'log every HTTP request').default(false));
}

export function optionsFromFlags(flags: CliFlags): SimulatorOptionsInput {
  return {
    host: flags.host,
    port: flags.port,
    model: flags.model,
    maxModelLen: flags.maxModelLen,
    blockSize: flags.blockSize,
    numGpuBlocks: flags.gpuBlocks,
    enablePrefixCaching: flags.prefixCaching,
    maxNumSeqs: flags.maxNumSeqs,
    repliesFile: flags.replies,
    seed: flags.seed,
    logger: flags.log,
    lmcache: {
      enabled: flags.lmcache,
      chunkSize: flags.lmcacheChunkSize,
      maxLocalCpuSizeTokens: flags.lmcacheCpuTokens,
      remoteTierRedisUrl: flags.lmcacheRemoteRedis,
      remoteKeyPrefix: flags.lmcacheRemotePrefix,
    },
    timing: { timeScale: flags.timeScale },
    faults: {
      errorRate: flags.errorRate,
      errorStatus: flags.errorStatus,
      cutStreamAfterTokens: flags.cutAfter,
      stallMs: flags.stallMs,
    },
  };
}

async function main(argv: string[]): Promise<void> {
  const program = buildCli();
  program.parse(argv);
  const flags = program.opts<CliFlags>();
  const cluster: RunningSimulatorCluster = await startEngineSimulatorCluster(
    flags.replicas,
    optionsFromFlags(flags),
  );
  const first = cluster.replicas[0].engine.options;
  const banner = '='.repeat(100);
  console.log(banner);
  console.log(
    'KVCHAT ENGINE SIMULATOR: answers are SYNTHETIC. This is a test double of vLLM + LMCache, not an LLM.',
  );
  console.log(banner);
  for (const r of cluster.replicas) {
    console.log(`replica ${r.engine.options.replicaId}: ${r.baseURL} (model ${r.engine.options.model})`);
  }
  console.log(
    `prefix caching ${first.enablePrefixCaching ? 'on' : 'off'}, block ${first.blockSize} tokens x ${first.numGpuBlocks} GPU blocks; ` +
      `LMCache ${first.lmcache.enabled ? `on (chunk ${first.lmcache.chunkSize}, CPU ${first.lmcache.maxLocalCpuSizeTokens} tokens${first.lmcache.remoteTierRedisUrl ? `, remote ${first.lmcache.remoteTierRedisUrl}` : ''})` : 'off'}; ` +
      `time scale ${first.timing.timeScale}`,
  );

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping the engine simulator`);
    cluster.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (require.main === module) {
  main(process.argv).catch((err: unknown) => {
    console.error(`engine simulator failed to start: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
