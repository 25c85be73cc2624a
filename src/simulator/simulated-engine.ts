import { BatchScheduler } from './batch-scheduler';
import { type ChatMessage } from './chat-template';
import { LmcacheTiers, type LmcacheStats, planLoad, RedisRemoteChunkStore } from './lmcache';
import { computeBlockHashes, type KvAllocation, KvBlockPool, type KvPoolStats } from './prefix-cache';
import {
  type FinishReason,
  type GenerationPlan,
  loadRepliesFile,
  ReplyGenerator,
  type ReplySource,
} from './reply-generator';
import { SimTokenizer } from './sim-tokenizer';
import { contextLengthError, SimulatorHttpError } from './simulator.errors';
import { SimulatorMetrics } from './simulator.metrics';
import { mergeFaults, type SimulatorFaults, type SimulatorOptions } from './simulator.options';
import { AbortedError, PrefillLane, prefillCost, scaled, sleepMs, sleepUntil } from './timing';
import { mulberry32 } from '../common/prng';

/** One generation request, already tokenized and validated by the HTTP layer. */
export interface GenerateRequest {
  promptTokenIds: number[];
  /** Mixed into the hash of the first block / chunk only (vLLM `cache_salt`). */
  cacheSalt?: string;
  /** The request's `max_tokens` / `max_completion_tokens`, if any. */
  maxTokens?: number;
  seed?: number;
  stop?: string[];
  /** Last user message of a chat, for the replies file. */
  lastUserMessage?: string;
  /** The reply's text when the server decided it (tool-call arguments, a JSON answer). */
  structuredReply?: string;
  /** End-of-sequence token of a natural reply. */
  eosTokenId: number;
  /** Aborts the request (client gone): sleeps stop and its blocks are freed. */
  signal: AbortSignal;
}

/** Where the prompt's tokens came from, in tokens. `cachedTokens` is what usage reports. */
export interface CacheReport {
  promptTokens: number;
  /** GPU prefix cache hits + tokens loaded from LMCache (vLLM's `num_cached_tokens`). */
  cachedTokens: number;
  gpuHitTokens: number;
  cpuHitTokens: number;
  remoteHitTokens: number;
  /** Tokens recomputed on the GPU. */
  computedTokens: number;
}

/** The engine's own timings of a request, wall-clock ms unless marked model (unscaled) ms. */
export interface EngineTimings {
  /** Waiting for a batch slot and KV blocks (vLLM's WAITING phase). */
  queueMs: number;
  /** Waiting for the GPU behind other prefills' recompute. */
  prefillWaitMs: number;
  /** Arrival to first token (includes tokenizing the reply plan, queueing, prefill, stall). */
  ttftMs: number;
  /** The timing model's prefill cost, before `timeScale` (overhead + compute + loads). */
  modelPrefillMs: number;
  /** Injected stall before the first token. */
  stallMs: number;
}

/** What a generation yields, in order: `first`, then `token`s, then `done` (or `cut`). */
export type EngineEvent =
  | { type: 'first'; requestId: string; cache: CacheReport; timings: EngineTimings; source: ReplySource }
  | { type: 'token'; index: number; tokenId: number; delta: string }
  | { type: 'cut'; afterTokens: number }
  | {
      type: 'done';
      finishReason: FinishReason;
      stopReason: string | null;
      promptTokens: number;
      completionTokens: number;
      cachedTokens: number;
      e2eMs: number;
    };

/** Snapshot of the engine for `GET /sim/state`. */
export interface SimulatorState {
  model: string;
  replicaId: number;
  synthetic: true;
  requests: { running: number; waiting: number; started: number; finished: number; aborted: number };
  gpu: KvPoolStats & { blockSize: number; enablePrefixCaching: boolean };
  lmcache: (LmcacheStats & { enabled: true; chunkSize: number }) | { enabled: false };
  faults: SimulatorFaults;
  timing: SimulatorOptions['timing'];
}

/**
 * A simulated vLLM engine: tokenizer, GPU prefix cache, LMCache tiers, continuous batching, the
 * timing model, metrics and faults. It never runs a model: replies are synthetic (or recorded).
 */
export class SimulatedEngine {
  readonly tokenizer = new SimTokenizer();
  readonly metrics: SimulatorMetrics;
  private readonly pool: KvBlockPool;
  private readonly scheduler: BatchScheduler;
  private readonly lane = new PrefillLane();
  private readonly replies: ReplyGenerator;
  private faults: SimulatorFaults;
  private readonly random: () => number;
  private counter = 0;
  private started = 0;
  private finished = 0;
  private aborted = 0;

  private constructor(
    readonly options: SimulatorOptions,
    private readonly lmcache: LmcacheTiers | null,
    private readonly remoteStore: RedisRemoteChunkStore | null,
    repliesIndex: ReadonlyMap<string, string>,
  ) {
    this.pool = new KvBlockPool(options.numGpuBlocks, options.blockSize, options.enablePrefixCaching);
    this.scheduler = new BatchScheduler(options.maxNumSeqs);
    this.replies = new ReplyGenerator(this.tokenizer, options.replyTokens, repliesIndex);
    this.faults = { ...options.faults };
    this.random = mulberry32(options.seed);
    this.metrics = new SimulatorMetrics(options.model, options, () => {
      const lm = this.lmcache?.stats();
      return {
        running: this.scheduler.numRunning,
        waiting: this.scheduler.numWaiting,
        kvUsage: this.pool.stats().usage,
        lmcacheLocalBytes: (lm?.cpuTokens ?? 0) * options.kvBytesPerToken,
        lmcacheCpuEvictions: lm?.cpuEvictions ?? 0,
      };
    });
  }

  /** Builds an engine: loads the replies file and connects the remote tier when configured. */
  static async create(options: SimulatorOptions): Promise<SimulatedEngine> {
    const repliesIndex = options.repliesFile
      ? loadRepliesFile(options.repliesFile)
      : new Map<string, string>();
    let remote: RedisRemoteChunkStore | null = null;
    let lmcache: LmcacheTiers | null = null;
    if (options.lmcache.enabled) {
      if (options.lmcache.remoteTierRedisUrl) {
        remote = await RedisRemoteChunkStore.connect(
          options.lmcache.remoteTierRedisUrl,
          options.lmcache.remoteKeyPrefix,
          options.model,
          options.lmcache.remoteTtlSeconds,
        );
      }
      lmcache = new LmcacheTiers(options.lmcache.chunkSize, options.lmcache.maxLocalCpuSizeTokens, remote);
    }
    return new SimulatedEngine(options, lmcache, remote, repliesIndex);
  }

  /** Token ids of a chat rendered with the simulator's template. */
  tokenizeChat(messages: readonly ChatMessage[], addGenerationPrompt = true): number[] {
    return this.tokenizer.encodeChat(messages, addGenerationPrompt);
  }

  /** As `tokenizeChat`, yielding to the event loop while it works (request handlers use this). */
  tokenizeChatAsync(messages: readonly ChatMessage[], addGenerationPrompt = true): Promise<number[]> {
    return this.tokenizer.encodeChatAsync(messages, addGenerationPrompt);
  }

  /**
   * Checks that a prompt (and the requested `max_tokens`) fit the context window; throws a 400
   * `SimulatorHttpError` with vLLM's wording otherwise.
   */
  validateLength(promptTokens: number, maxTokens?: number): void {
    const limit = this.options.maxModelLen;
    if (maxTokens === undefined ? promptTokens >= limit : promptTokens + maxTokens > limit) {
      throw contextLengthError(limit, promptTokens, maxTokens);
    }
  }

  /** Current faults. */
  getFaults(): SimulatorFaults {
    return { ...this.faults };
  }

  /** Changes faults at runtime (validated; throws `SimulatorOptionsError`); returns the result. */
  setFaults(patch: Partial<SimulatorFaults>): SimulatorFaults {
    this.faults = mergeFaults(this.faults, patch);
    return this.getFaults();
  }

  /** vLLM's `/reset_prefix_cache`, extended to LMCache: forgets GPU block hashes and every LMCache chunk. */
  async resetPrefixCache(): Promise<void> {
    this.pool.reset();
    await this.lmcache?.clear();
  }

  state(): SimulatorState {
    const lm = this.lmcache;
    return {
      model: this.options.model,
      replicaId: this.options.replicaId,
      synthetic: true,
      requests: {
        running: this.scheduler.numRunning,
        waiting: this.scheduler.numWaiting,
        started: this.started,
        finished: this.finished,
        aborted: this.aborted,
      },
      gpu: {
        ...this.pool.stats(),
        blockSize: this.options.blockSize,
        enablePrefixCaching: this.options.enablePrefixCaching,
      },
      lmcache: lm
        ? { enabled: true, chunkSize: lm.chunkSize, ...lm.stats(this.remoteStore?.errors ?? 0) }
        : { enabled: false },
      faults: this.getFaults(),
      timing: { ...this.options.timing },
    };
  }

  /**
   * Runs one request through the engine and yields its events. An injected error throws a
   * `SimulatorHttpError` before anything is yielded; an abort throws `AbortedError`. Stopping the
   * iteration early (`return()`) releases the request like an abort.
   */
  async *generate(req: GenerateRequest): AsyncGenerator<EngineEvent, void, undefined> {
    const arrival = performance.now();
    const requestId = `sim${this.options.replicaId}-${++this.counter}`;
    if (this.faults.errorRate > 0 && this.random() < this.faults.errorRate) {
      throw new SimulatorHttpError(
        this.faults.errorStatus,
        'Simulated engine failure (faults.errorRate) from the kvchat engine simulator',
        undefined,
        this.faults.retryAfterSeconds,
      );
    }
    const prompt = req.promptTokenIds;
    const limit = this.options.maxModelLen - prompt.length;
    const plan: GenerationPlan = this.replies.plan({
      promptTokenIds: prompt,
      maxTokens: Math.min(req.maxTokens ?? limit, limit),
      seed: req.seed,
      stop: req.stop,
      lastUserMessage: req.lastUserMessage,
      structuredReply: req.structuredReply,
      eosTokenId: req.eosTokenId,
    });
    const promptHashes = computeBlockHashes(prompt, this.options.blockSize, req.cacheSalt);

    this.started++;
    const enqueuedAt = performance.now();
    let allocation: KvAllocation | null = null;
    try {
      await this.scheduler.admit(() => {
        allocation = this.pool.allocate(
          requestId,
          prompt,
          promptHashes,
          plan.outputIds.length,
          req.cacheSalt,
        );
        return allocation !== null;
      }, req.signal);
    } catch (err) {
      this.aborted++;
      this.metrics.requestSuccess.inc({ finished_reason: 'abort' });
      throw err;
    }
    const admittedAt = performance.now();

    let finishedNormally = false;
    let emitted = 0;
    try {
      const gpuHitTokens = (allocation as KvAllocation | null)?.hitTokens ?? 0;
      let cpuHitTokens = 0;
      let remoteHitTokens = 0;
      if (this.lmcache) {
        // LMCache serves what follows the GPU hit, up to prompt - 1 (the last token is always computed).
        const lookup = await this.lmcache.lookup(prompt, req.cacheSalt);
        const end = Math.min(lookup.hitTokens, prompt.length - 1);
        const load = planLoad(lookup, gpuHitTokens, end);
        cpuHitTokens = load.cpuTokens;
        remoteHitTokens = load.remoteTokens;
        this.lmcache.promote(lookup, gpuHitTokens, end);
        this.metrics.lmcacheLookupRequests.inc();
        this.metrics.lmcacheLookupTokens.inc(prompt.length);
        this.metrics.lmcacheLookupHits.inc(lookup.hitTokens);
        this.metrics.lmcacheRetrieveRequests.inc();
        this.metrics.lmcacheRequestedTokens.inc(prompt.length);
        this.metrics.lmcacheHitTokens.inc(cpuHitTokens + remoteHitTokens);
        this.metrics.lmcacheVllmHitTokens.inc(gpuHitTokens);
        this.metrics.lmcachePromptTokens.inc(prompt.length);
        if (lookup.remoteQueried) this.metrics.lmcacheRemoteReadRequests.inc();
      }
      const cachedTokens = gpuHitTokens + cpuHitTokens + remoteHitTokens;
      const sharedTokens = this.options.prefixLimit?.sharedPrefix(prompt, req.cacheSalt);
      const cache: CacheReport = {
        promptTokens: prompt.length,
        cachedTokens,
        gpuHitTokens,
        cpuHitTokens,
        remoteHitTokens,
        computedTokens: prompt.length - cachedTokens,
      };
      const timing = this.options.timing;
      const cost = prefillCost(
        { uncachedTokens: cache.computedTokens, cpuTokens: cpuHitTokens, remoteTokens: remoteHitTokens },
        timing,
      );
      // The fixed overhead and the KV loads (PCIe / network, not GPU compute) run alongside other
      // requests; the recompute queues behind other prefills on the one GPU.
      await sleepMs(scaled(cost.overheadMs + cost.cpuLoadMs + cost.remoteLoadMs, timing), req.signal);
      const booking = this.lane.book(scaled(cost.computeMs, timing));
      const prefillWaitMs = Math.max(0, booking.startAt - performance.now());
      await sleepUntil(booking.endAt, req.signal);
      const stallMs = this.faults.stallMs;
      if (stallMs > 0) await sleepMs(stallMs, req.signal);

      this.pool.markComputed(requestId, prompt.length);
      if (this.lmcache) {
        const stored = await this.lmcache.store(prompt, req.cacheSalt);
        this.metrics.lmcacheStoreRequests.inc();
        this.metrics.lmcacheStoredTokens.inc(stored.storedTokens);
        if (stored.remoteWritten) this.metrics.lmcacheRemoteWriteRequests.inc();
      }
      this.metrics.prefixCacheQueries.inc(this.options.enablePrefixCaching ? prompt.length : 0);
      this.metrics.prefixCacheHits.inc(gpuHitTokens);
      this.metrics.promptTokens.inc(prompt.length);
      this.metrics.requestPromptTokens.observe(prompt.length);

      const firstAt = performance.now();
      const timings: EngineTimings = {
        queueMs: admittedAt - enqueuedAt,
        prefillWaitMs,
        ttftMs: firstAt - arrival,
        modelPrefillMs: cost.totalMs,
        stallMs,
      };
      this.metrics.requestQueueTime.observe(timings.queueMs / 1000);
      this.metrics.timeToFirstToken.observe(timings.ttftMs / 1000);
      this.metrics.requestPrefillTime.observe((firstAt - admittedAt) / 1000);
      yield { type: 'first', requestId, cache, timings, source: plan.source };

      let lastAt = firstAt;
      for (let i = 0; i < plan.outputIds.length; i++) {
        const cut = this.faults.cutStreamAfterTokens;
        if (cut !== null && i >= cut) {
          yield { type: 'cut', afterTokens: i };
          return;
        }
        if (i > 0) {
          await sleepUntil(firstAt + scaled(i * timing.itlMs, timing), req.signal);
          const now = performance.now();
          this.metrics.interTokenLatency.observe((now - lastAt) / 1000);
          lastAt = now;
        }
        this.pool.appendToken(requestId, plan.outputIds[i]);
        this.metrics.generationTokens.inc();
        emitted++;
        yield { type: 'token', index: i, tokenId: plan.outputIds[i], delta: plan.deltas[i] };
      }

      const doneAt = performance.now();
      const n = plan.outputIds.length;
      this.metrics.requestDecodeTime.observe((doneAt - firstAt) / 1000);
      this.metrics.e2eRequestLatency.observe((doneAt - arrival) / 1000);
      this.metrics.requestGenerationTokens.observe(n);
      if (n > 1) this.metrics.requestTimePerOutputToken.observe((doneAt - firstAt) / 1000 / (n - 1));
      this.metrics.requestSuccess.inc({ finished_reason: plan.finishReason });
      finishedNormally = true;
      if (this.options.prefixLimit && sharedTokens !== undefined) {
        this.options.prefixLimit.record({
          promptTokens: prompt.length,
          sharedTokens,
          cachedTokens,
          lastUserMessage: req.lastUserMessage,
        });
        this.options.prefixLimit.remember([...prompt, ...plan.outputIds], req.cacheSalt);
      }
      yield {
        type: 'done',
        finishReason: plan.finishReason,
        stopReason: plan.stopReason,
        promptTokens: prompt.length,
        completionTokens: n,
        cachedTokens,
        e2eMs: doneAt - arrival,
      };
    } finally {
      // Finished, aborted, cut or abandoned: the request leaves the batch and its blocks are freed
      // (its computed full blocks stay cached in the free queue).
      this.pool.free(requestId);
      this.scheduler.release();
      if (finishedNormally) {
        this.finished++;
      } else {
        this.aborted++;
        this.metrics.requestSuccess.inc({ finished_reason: 'abort' });
        this.metrics.requestGenerationTokens.observe(emitted);
      }
    }
  }

  /** Closes the remote tier connection. */
  async close(): Promise<void> {
    await this.lmcache?.close();
  }
}

/** Whether an error is the engine's abort signal (client gone). */
export function isAbort(err: unknown): boolean {
  return err instanceof AbortedError;
}
