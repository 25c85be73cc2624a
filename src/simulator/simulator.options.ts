import type { PrefixLimitTracker } from './prefix-limit';
/**
 * Options of the engine simulator: a test double of a vLLM (+ LMCache) replica for machines
 * without a GPU. It simulates the ENGINE (prefix cache, KV tiers, batching, timing, metrics),
 * never a language model: every answer it gives is synthetic.
 *
 * Calibration of the timing defaults (per token, one request, an 8B model on one GPU):
 *
 * - `itlMs` = 13 ms. vLLM's own blog, "vLLM v0.6.0: 2.7x Throughput Improvement and 5x Latency
 *   Reduction" (https://blog.vllm.ai/2024/09/05/perf-update.html), profiling Llama 3 8B on one
 *   H100: "Llama3 8B can generate 1 token every 13 ms under light load".
 * - `prefillMsPerToken` = 0.051 ms (about 19,600 prompt tokens/s) and `cpuLoadMsPerToken` =
 *   0.0185 ms: LMCache's benchmarking guide (https://docs.lmcache.ai/getting_started/benchmarking.html,
 *   source `docs/source/getting_started/benchmarking.rst` in LMCache/LMCache) runs Qwen3-8B on vLLM
 *   with tensor parallel size 1, 46 documents of 10,000 tokens, 100 output tokens, 4 requests in
 *   flight. vLLM alone (every document recomputed): query round 23.467 s, mean TTFT 0.757 s;
 *   with LMCache CPU offload (every document loaded from CPU): 13.789 s, mean TTFT 0.185 s.
 *   460,000 prompt tokens / 23.467 s = 19,602 tokens/s -> 0.051 ms per recomputed token (the
 *   simulator serializes prefills, so the 0.757 s mean TTFT with 4 in flight emerges from
 *   queueing behind other prefills); 0.185 s / 10,000 tokens -> 0.0185 ms per token loaded from
 *   CPU. The guide does not name the GPU; both figures include decode interference, so they are
 *   upper bounds for an idle GPU.
 * - `overheadMs` = 5 ms: vLLM's V1 announcement (https://blog.vllm.ai/2025/01/27/v1-alpha-release.html)
 *   notes that for "Llama-8B running on NVIDIA H100 GPUs ... execution time on the GPU is as low
 *   as ~5ms" per engine step; a first token needs at least one step.
 * - `remoteLoadMsPerToken` = 0.04 ms is an ASSUMPTION (no published measurement was found): about
 *   twice the CPU tier, for the extra network hop to the shared store.
 *
 * KV size per token: 128 KiB for Llama-3.1-8B in bf16 (2 x 32 layers x 8 KV heads x 128 x 2 bytes),
 * consistent with the 2 MB per 16-token block that vLLM's KV offloading post reports for
 * meta-llama/Llama-3.1-8B-Instruct (https://blog.vllm.ai/2026/01/08/kv-offloading-connector.html).
 */

/** Fault injection, changeable at runtime (`engine.setFaults`, `POST /sim/faults`). */
export interface SimulatorFaults {
  /** Probability in [0, 1] that a generation request fails before any token. Default 0. */
  errorRate: number;
  /** HTTP status of an injected failure. Default 500. */
  errorStatus: number;
  /** Destroy the connection after this many generated tokens, without `[DONE]`. Default null (off). */
  cutStreamAfterTokens: number | null;
  /** Extra wall-clock delay before the first token, in ms. NOT multiplied by `timeScale`. Default 0. */
  stallMs: number;
  /** `Retry-After` (seconds) sent with an injected 429/503/529, as rate-limited providers do. Default null (none). */
  retryAfterSeconds: number | null;
}

/**
 * Anthropic prompt caching as the Messages mode models it
 * (https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching).
 */
export interface SimulatorPromptCaching {
  /** Shortest cacheable prefix, tokens: 1024 for Claude Opus/Sonnet models (2048 for Haiku). Default 1024. */
  minTokens: number;
  /** Lifetime of a cache entry, refreshed on every hit, ms: the default `ephemeral` TTL of 5 minutes. Default 300000. */
  ttlMs: number;
}

/** The timing model; every simulated sleep is multiplied by `timeScale`. */
export interface SimulatorTiming {
  /** Fixed cost of every request before its first token (API server, scheduling, one step), ms. */
  overheadMs: number;
  /** Cost of each prompt token that is not cached and must be computed, ms/token. */
  prefillMsPerToken: number;
  /** Inter-token latency during decode, ms/token. */
  itlMs: number;
  /** Cost of each prompt token loaded from LMCache's local CPU tier, ms/token. */
  cpuLoadMsPerToken: number;
  /** Cost of each prompt token loaded from LMCache's remote (Redis) tier, ms/token. */
  remoteLoadMsPerToken: number;
  /** Multiplies every simulated sleep: 1 = calibrated real time, 0 = no sleeping (tests). */
  timeScale: number;
}

/** LMCache tiers below the GPU prefix cache. */
export interface SimulatorLmcacheOptions {
  /** Enable the LMCache connector (CPU tier, and the remote tier when configured). Default true. */
  enabled: boolean;
  /** Tokens per LMCache chunk (LMCache's `chunk_size`). Default 256. */
  chunkSize: number;
  /**
   * Capacity of the local CPU tier, in tokens. Default 524,288 tokens = 64 GiB of Llama-3.1-8B KV
   * at 128 KiB/token, the order of what LMCache's recommender suggests for an 8B model
   * (`LMCACHE_MAX_LOCAL_CPU_SIZE=66` GB in its benchmarking guide).
   */
  maxLocalCpuSizeTokens: number;
  /** Redis URL of a remote tier shared between replicas, e.g. `redis://127.0.0.1:6379`. Default none. */
  remoteTierRedisUrl?: string;
  /** Prefix of every remote-tier key (tests use a unique one). Default `kvchat:sim:lmcache:`. */
  remoteKeyPrefix: string;
  /** Time to live of remote-tier entries, seconds. Default 3600. */
  remoteTtlSeconds: number;
}

/** Every option of the simulator, resolved (see `resolveSimulatorOptions` for defaults). */
export interface SimulatorOptions {
  /** Interface to listen on. Default `127.0.0.1`. */
  host: string;
  /** TCP port; 0 picks an ephemeral port. Default 0. */
  port: number;
  /** Served model id; must contain `sim`. Default `kvchat-sim-llama-3.1-8b`. */
  model: string;
  /** Model id also accepted by `/v1/embeddings`. Default `kvchat-sim-lexical-embedding`. */
  embeddingModel: string;
  /** Index of this replica in a cluster (labels, request ids, a response header). Default 0. */
  replicaId: number;
  /** Context window: prompt tokens + max tokens may not exceed it. Default 32768 tokens. */
  maxModelLen: number;
  /** Tokens per KV block (vLLM `--block-size`). Default 16. */
  blockSize: number;
  /**
   * GPU KV blocks in the pool. Default 8192 blocks = 131,072 tokens = 16 GiB of Llama-3.1-8B KV:
   * less than an H100 holds, so long replays feel eviction pressure. Must hold `maxModelLen`.
   */
  numGpuBlocks: number;
  /** vLLM automatic prefix caching (`--enable-prefix-caching`). Default true. */
  enablePrefixCaching: boolean;
  /** Continuous batching bound (vLLM `--max-num-seqs`); extra requests wait FIFO. Default 256. */
  maxNumSeqs: number;
  /** Bytes of KV per token, for byte-denominated metrics. Default 131072 (Llama-3.1-8B, bf16). */
  kvBytesPerToken: number;
  /** Length range of synthetic replies when no `max_tokens` is given, tokens. Default 64..128. */
  replyTokens: { min: number; max: number };
  /** JSONL of recorded dialogues (`{messages:[{role,content}]}` per line) to replay replies from. */
  repliesFile?: string;
  /** Dimension of `/v1/embeddings` vectors. Default 384. */
  embeddingDimension: number;
  lmcache: SimulatorLmcacheOptions;
  timing: SimulatorTiming;
  faults: SimulatorFaults;
  /** The Anthropic Messages mode's prompt cache. */
  promptCaching: SimulatorPromptCaching;
  /** Seed of every pseudo-random choice (replies, fault draws). Default 0. */
  seed: number;
  /** Fastify request logging. Default false. */
  logger: boolean;
  /**
   * Measures the prefix-reuse ceiling of the prompts (`GET /sim/prefix-limit`); one tracker shared by the
   * replicas of a cluster. Unset = not measured (it keeps prompts and answers in memory).
   */
  prefixLimit?: PrefixLimitTracker;
}

/** What callers pass: any subset, nested groups included. */
export type SimulatorOptionsInput = Partial<
  Omit<SimulatorOptions, 'lmcache' | 'timing' | 'faults' | 'replyTokens' | 'promptCaching'> & {
    lmcache: Partial<SimulatorLmcacheOptions>;
    promptCaching: Partial<SimulatorPromptCaching>;
    timing: Partial<SimulatorTiming>;
    faults: Partial<SimulatorFaults>;
    replyTokens: Partial<SimulatorOptions['replyTokens']>;
  }
>;

export const DEFAULT_SIMULATOR_TIMING: Readonly<SimulatorTiming> = Object.freeze({
  overheadMs: 5,
  prefillMsPerToken: 0.051,
  itlMs: 13,
  cpuLoadMsPerToken: 0.0185,
  remoteLoadMsPerToken: 0.04,
  timeScale: 1,
});

export const DEFAULT_SIMULATOR_FAULTS: Readonly<SimulatorFaults> = Object.freeze({
  errorRate: 0,
  errorStatus: 500,
  cutStreamAfterTokens: null,
  stallMs: 0,
  retryAfterSeconds: null,
});

/** Thrown for options that cannot describe a working engine; the message names the option. */
export class SimulatorOptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimulatorOptionsError';
  }
}

/** Fills defaults and validates; throws `SimulatorOptionsError` naming the bad option. */
export function resolveSimulatorOptions(input: SimulatorOptionsInput = {}): SimulatorOptions {
  const options: SimulatorOptions = {
    host: input.host ?? '127.0.0.1',
    port: input.port ?? 0,
    model: input.model ?? 'kvchat-sim-llama-3.1-8b',
    embeddingModel: input.embeddingModel ?? 'kvchat-sim-lexical-embedding',
    replicaId: input.replicaId ?? 0,
    maxModelLen: input.maxModelLen ?? 32768,
    blockSize: input.blockSize ?? 16,
    numGpuBlocks: input.numGpuBlocks ?? 8192,
    enablePrefixCaching: input.enablePrefixCaching ?? true,
    maxNumSeqs: input.maxNumSeqs ?? 256,
    kvBytesPerToken: input.kvBytesPerToken ?? 131072,
    replyTokens: { min: input.replyTokens?.min ?? 64, max: input.replyTokens?.max ?? 128 },
    repliesFile: input.repliesFile,
    embeddingDimension: input.embeddingDimension ?? 384,
    lmcache: {
      enabled: input.lmcache?.enabled ?? true,
      chunkSize: input.lmcache?.chunkSize ?? 256,
      maxLocalCpuSizeTokens: input.lmcache?.maxLocalCpuSizeTokens ?? 524288,
      remoteTierRedisUrl: input.lmcache?.remoteTierRedisUrl,
      remoteKeyPrefix: input.lmcache?.remoteKeyPrefix ?? 'kvchat:sim:lmcache:',
      remoteTtlSeconds: input.lmcache?.remoteTtlSeconds ?? 3600,
    },
    timing: { ...DEFAULT_SIMULATOR_TIMING, ...definedOnly(input.timing) },
    faults: { ...DEFAULT_SIMULATOR_FAULTS, ...definedOnly(input.faults) },
    promptCaching: {
      minTokens: input.promptCaching?.minTokens ?? 1024,
      ttlMs: input.promptCaching?.ttlMs ?? 300_000,
    },
    seed: input.seed ?? 0,
    logger: input.logger ?? false,
    prefixLimit: input.prefixLimit,
  };
  validateOptions(options);
  return options;
}

/** Validates a fault patch against the current faults and returns the merged result. */
export function mergeFaults(current: SimulatorFaults, patch: Partial<SimulatorFaults>): SimulatorFaults {
  const merged = { ...current, ...definedOnly(patch) };
  validateFaults(merged);
  return merged;
}

function definedOnly<T extends object>(value: T | undefined): Partial<T> {
  if (!value) return {};
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function validateOptions(o: SimulatorOptions): void {
  if (!/sim/i.test(o.model)) {
    throw new SimulatorOptionsError(
      `model: "${o.model}" must contain "sim" so that nobody mistakes the simulator for a real model`,
    );
  }
  positiveInteger('maxModelLen', o.maxModelLen);
  positiveInteger('blockSize', o.blockSize);
  positiveInteger('numGpuBlocks', o.numGpuBlocks);
  positiveInteger('maxNumSeqs', o.maxNumSeqs);
  positiveInteger('embeddingDimension', o.embeddingDimension);
  positiveInteger('kvBytesPerToken', o.kvBytesPerToken);
  positiveInteger('replyTokens.min', o.replyTokens.min);
  positiveInteger('replyTokens.max', o.replyTokens.max);
  if (o.replyTokens.max < o.replyTokens.min) {
    throw new SimulatorOptionsError('replyTokens: max must be >= min');
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
    throw new SimulatorOptionsError(`port: ${o.port} is not a TCP port`);
  }
  // vLLM refuses to start when one max-length sequence cannot fit in the KV cache.
  if (o.numGpuBlocks * o.blockSize < o.maxModelLen) {
    throw new SimulatorOptionsError(
      `numGpuBlocks: ${o.numGpuBlocks} blocks x ${o.blockSize} tokens cannot hold maxModelLen ${o.maxModelLen}`,
    );
  }
  positiveInteger('lmcache.chunkSize', o.lmcache.chunkSize);
  nonNegative('lmcache.maxLocalCpuSizeTokens', o.lmcache.maxLocalCpuSizeTokens);
  positiveInteger('lmcache.remoteTtlSeconds', o.lmcache.remoteTtlSeconds);
  for (const key of Object.keys(o.timing) as (keyof SimulatorTiming)[]) {
    nonNegative(`timing.${key}`, o.timing[key]);
  }
  validateFaults(o.faults);
  positiveInteger('promptCaching.minTokens', o.promptCaching.minTokens);
  positiveInteger('promptCaching.ttlMs', o.promptCaching.ttlMs);
}

function validateFaults(f: SimulatorFaults): void {
  if (!(f.errorRate >= 0 && f.errorRate <= 1)) {
    throw new SimulatorOptionsError(`faults.errorRate: ${f.errorRate} is not in [0, 1]`);
  }
  if (!Number.isInteger(f.errorStatus) || f.errorStatus < 400 || f.errorStatus > 599) {
    throw new SimulatorOptionsError(`faults.errorStatus: ${f.errorStatus} is not an HTTP error status`);
  }
  if (f.cutStreamAfterTokens !== null) {
    if (!Number.isInteger(f.cutStreamAfterTokens) || f.cutStreamAfterTokens < 0) {
      throw new SimulatorOptionsError('faults.cutStreamAfterTokens: must be a non-negative integer or null');
    }
  }
  nonNegative('faults.stallMs', f.stallMs);
  if (f.retryAfterSeconds !== null) nonNegative('faults.retryAfterSeconds', f.retryAfterSeconds);
}

function positiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) {
    throw new SimulatorOptionsError(`${name}: ${value} must be a positive integer`);
  }
}

function nonNegative(name: string, value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new SimulatorOptionsError(`${name}: ${value} must be a finite number >= 0`);
  }
}
