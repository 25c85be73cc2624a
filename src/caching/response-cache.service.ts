import { Inject, Injectable, Logger, type OnModuleInit, Optional } from '@nestjs/common';
import { CachingConfig } from '../config/caching.config';
import type { ChatResult, ToolCall } from '../inference/inference.types';
import { MetricsService } from '../observability/metrics.service';
import { NOOP_TURN_TRACE, type TurnTrace } from '../observability/turn-trace';
import { firstRejection, type ResponseCacheGuard } from './cache-guards';
import { analyzeQuestion, loadQuestionTagger } from './question-features';
import { ResponseCacheStats } from './response-cache.stats';
import { type FlightLock, RESPONSE_CACHE_STORE, type ResponseCacheStore } from './response-cache.store';
import type {
  CachedAnswer,
  CacheControl,
  GuardRejection,
  LookupResult,
  ResponseCacheReport,
  ResponseCacheScope,
} from './response-cache.types';
import { questionHash, scopeFingerprint } from './scope';
import { SemanticIndex } from './semantic-index';
import { SingleFlight } from './single-flight';
import { RESPONSE_CACHE_VERIFIER, type ResponseCacheVerifier } from './verifier';

/** Injection token of the ordered guard list. */
export const RESPONSE_CACHE_GUARDS = Symbol('RESPONSE_CACHE_GUARDS');

/** A request to answer through the cache. */
export interface ServeRequest {
  scope: ResponseCacheScope;
  /** The question as the user asked it (the last user message). */
  question: string;
  control?: CacheControl;
  /**
   * The question's embedding when the caller already has it (a turn embeds its message once, for
   * routing and for this lookup); computed here otherwise. It must come from EmbeddingsService.
   */
  embedding?: readonly number[];
  /**
   * Knowledge documents the answer will cite (ids). A stored answer is indexed under them, so that a
   * change of one purges it (`ResponseCacheAdmin.invalidateDocument`); the versions cited belong in
   * `scope.context`, so that a changed document never matches the entry even before the purge.
   */
  documents?: readonly string[];
  trace?: TurnTrace;
  /**
   * The caller looked the exact key up an instant ago (`exactHit`) and missed: `serve` starts at the
   * semantic lookup instead of asking Redis again (the single-flight leader still re-checks the key).
   */
  exactMissed?: boolean;
}

/** What `exactHit` found: a hit, a miss (the key was looked up), or null (not looked up, or the lookup failed). */
export type ExactHitOutcome = { hit: ServeResult } | 'miss' | null;

/**
 * The engine call behind the cache. `miss` is what the lookup found (undefined when the cache is
 * disabled), so the caller can report the miss before the answer streams.
 */
export type ComputeAnswer = (miss: ResponseCacheReport | undefined) => Promise<ChatResult>;

/** The answer and what the cache did. */
export interface ServeResult {
  /**
   * The answer; on a hit, `usage` is zero (no engine call) and `replica` is `response-cache`. A hit is
   * not streamed: the caller replays `result.content` (`replayDeltas`) to its client.
   */
  result: ChatResult;
  /** Undefined when the response cache is disabled. */
  report?: ResponseCacheReport;
  /** The entry served on a hit (its `usage` is the original engine call's). */
  cached: CachedAnswer | null;
  /** Id of the entry this answer was stored as, on a miss that stored it. */
  storedEntryId?: string;
}

/** A semantic candidate as the benchmark and the logs see it. */
export interface CandidateExplanation {
  entryId: string;
  question: string;
  similarity: number;
  rejection: { guard: string; reason: string } | null;
}

interface FlightOutcome {
  /** The engine's answer when this flight called the engine. */
  result?: ChatResult;
  /** The stored entry (null when the answer was not cacheable). */
  entry: CachedAnswer | null;
}

/** Marks the replica of an answer that came from the response cache. */
export const RESPONSE_CACHE_REPLICA = 'response-cache';

/**
 * The response cache: answers a repeated question without the engine.
 *
 * Lookup: exact first (Redis: scope fingerprint + hash of the normalised question), then semantic
 * (the nearest cached questions of the same scope above RESPONSE_CACHE_SIMILARITY_THRESHOLD), each
 * candidate passing the guards (negation, numbers, units, dates, entities, direction, content
 * words) and the optional verifier before it is served. Store: only complete answers
 * (`finish_reason` `stop`, non-empty). Identical concurrent misses share one engine call.
 */
@Injectable()
export class ResponseCache implements OnModuleInit {
  private readonly logger = new Logger('ResponseCache');

  constructor(
    private readonly config: CachingConfig,
    @Inject(RESPONSE_CACHE_STORE) private readonly store: ResponseCacheStore,
    private readonly semantic: SemanticIndex,
    private readonly stats: ResponseCacheStats,
    private readonly flights: SingleFlight,
    @Inject(RESPONSE_CACHE_GUARDS) private readonly guards: ResponseCacheGuard[],
    @Inject(RESPONSE_CACHE_VERIFIER) private readonly verifier: ResponseCacheVerifier | null,
    @Optional() private readonly metrics?: MetricsService,
  ) {}

  /** Where the cache is on, loads the question tagger its guards use, so that no lookup pays its load. */
  onModuleInit(): void {
    if (this.config.RESPONSE_CACHE_ENABLED) loadQuestionTagger();
  }

  /** Whether the response cache is on (RESPONSE_CACHE_ENABLED). */
  get enabled(): boolean {
    return this.config.RESPONSE_CACHE_ENABLED;
  }

  /**
   * Answers `request` from the cache, or with `compute` (the engine call, which streams on its own)
   * and stores the answer. Cache failures never fail the request: they are logged and the engine answers.
   * @param signal the turn's cancellation (stops a verifier call or a single-flight wait)
   * @throws whatever `compute` throws (the answer is then not stored)
   */
  async serve(request: ServeRequest, compute: ComputeAnswer, signal?: AbortSignal): Promise<ServeResult> {
    if (!this.enabled) return { result: await compute(undefined), cached: null };
    const started = performance.now();
    const mode = request.control?.mode ?? 'default';
    const tenantId = request.scope.tenantId;
    const trace = request.trace ?? NOOP_TURN_TRACE;

    if (mode === 'bypass' || mode === 'no-cache') {
      this.stats.count(tenantId, 'skip');
      trace.span('response-cache', { mode }).end({ hit: false, skipped: true });
      const result = await compute({ hit: false });
      const stored =
        mode === 'no-cache'
          ? await this.storeAnswer(request.scope, request.question, result, undefined, request.documents)
          : null;
      return {
        result,
        report: { hit: false },
        cached: null,
        ...(stored ? { storedEntryId: stored.entryId } : {}),
      };
    }

    this.stats.count(tenantId, 'lookup');
    const span = trace.span('response-cache', { mode, maxAgeSeconds: request.control?.maxAgeSeconds });
    const lookup = await this.lookup(
      request.scope,
      request.question,
      request.control,
      signal,
      request.embedding,
      request.exactMissed === true,
    ).catch((e: unknown): LookupResult => {
      this.logger.warn(
        `response cache lookup failed, answering without it: ${e instanceof Error ? e.message : String(e)}`,
      );
      return { hit: false };
    });
    if (lookup.hit) {
      this.stats.count(tenantId, lookup.type === 'exact' ? 'hit:exact' : 'hit:semantic');
      this.metrics?.recordResponseCacheLookup(lookup.type, lookup.similarity);
      const report: ResponseCacheReport = {
        hit: true,
        type: lookup.type,
        similarity: round4(lookup.similarity),
        entryId: lookup.answer.entryId,
      };
      span.end(report);
      if (lookup.type === 'semantic' && mode === 'default') {
        // Repeats of this wording become exact hits on the same answer (and skip the guards).
        void this.store.alias(lookup.answer, questionHash(request.question)).catch(() => undefined);
      }
      return this.hit(lookup.answer, report, started);
    }
    const missReport: ResponseCacheReport = {
      hit: false,
      ...(lookup.rejection ? { guard: lookup.rejection.guard } : {}),
    };
    span.end(missReport, lookup.rejection ? { rejection: lookup.rejection } : undefined);

    if (mode === 'no-store') {
      this.countMiss(tenantId, lookup.rejection);
      return { result: await compute(missReport), report: missReport, cached: null };
    }

    const key = `${tenantId}:${scopeFingerprint(request.scope)}:${questionHash(request.question)}`;
    const flight = this.flights.coalesce(key, () =>
      this.lead(request, () => compute(missReport), signal, lookup.embedding),
    );
    if (flight.leader) {
      const outcome = await flight.promise.catch((e: unknown) => {
        this.countMiss(tenantId, lookup.rejection);
        throw e;
      });
      if (outcome.result) {
        this.countMiss(tenantId, lookup.rejection);
        return {
          result: outcome.result,
          report: missReport,
          cached: null,
          ...(outcome.entry ? { storedEntryId: outcome.entry.entryId } : {}),
        };
      }
      // Another replica's engine call answered while this one waited.
      if (outcome.entry) return this.servedByFlight(outcome.entry, request, started);
    } else {
      const outcome = await flight.promise.catch(() => null);
      if (outcome?.entry) return this.servedByFlight(outcome.entry, request, started);
    }
    // The call we waited for failed or was not cacheable: answer this request on its own.
    this.countMiss(tenantId, lookup.rejection);
    const result = await compute(missReport);
    const stored = await this.storeAnswer(
      request.scope,
      request.question,
      result,
      lookup.embedding,
      request.documents,
    );
    return { result, report: missReport, cached: null, ...(stored ? { storedEntryId: stored.entryId } : {}) };
  }

  /**
   * The exact hit of `request`, or null: the fast path of a non-streamed chat completion, answered before
   * Nest's router (src/completions/exact-hit.hook.ts). One Redis round trip, the exact lookup `serve`
   * starts with; on a miss it counts nothing and the caller falls through to the normal path, whose `serve`
   * looks up (and counts) again. On a hit it does what `serve` does for one: counts the lookup and the hit
   * (Redis stats, Prometheus), records the `response-cache` span on the trace and the entry's recency.
   * @param traceOnHit called once, on a hit only, for the trace to record the span on (the caller starts
   *   its telemetry then, so that a miss leaves no trace behind)
   * @returns the hit; `miss` when the key holds no fresh entry (pass `exactMissed` to `serve`); null when
   *   the cache is off, for `bypass` and `no-cache`, and when the lookup failed (`serve` then tries, and
   *   logs, again)
   */
  async exactHit(
    request: Pick<ServeRequest, 'scope' | 'question' | 'control'>,
    traceOnHit: () => TurnTrace,
  ): Promise<ExactHitOutcome> {
    if (!this.enabled) return null;
    const mode = request.control?.mode ?? 'default';
    if (mode === 'bypass' || mode === 'no-cache') return null;
    const started = performance.now();
    const { scope, question, control } = request;
    let answer: CachedAnswer | null;
    try {
      answer = await this.exactEntry(scope, scopeFingerprint(scope), question, control);
    } catch {
      return null;
    }
    if (!answer) return 'miss';
    this.stats.count(scope.tenantId, 'lookup');
    this.stats.count(scope.tenantId, 'hit:exact');
    this.metrics?.recordResponseCacheLookup('exact', 1);
    const report: ResponseCacheReport = { hit: true, type: 'exact', similarity: 1, entryId: answer.entryId };
    traceOnHit().span('response-cache', { mode, maxAgeSeconds: control?.maxAgeSeconds }).end(report);
    return { hit: this.hit(answer, report, started) };
  }

  /** The exact entry of a question when it is fresh (its scope, and within the max age), else null. */
  private async exactEntry(
    scope: ResponseCacheScope,
    fingerprint: string,
    question: string,
    control?: CacheControl,
  ): Promise<CachedAnswer | null> {
    const exact = await this.store.getExact(scope.tenantId, fingerprint, questionHash(question));
    return exact && exact.scope === fingerprint && Date.now() - exact.createdAt <= this.maxAgeMs(control)
      ? exact
      : null;
  }

  /**
   * Looks a question up: exact, then semantic through the guards and the verifier.
   * Never counts statistics (serve does).
   * @param embedding the question's embedding when the caller has it (else embedded here, only when
   *   the exact lookup missed)
   * @param exactMissed the caller missed the exact key an instant ago (`exactHit`): semantic lookup only
   */
  async lookup(
    scope: ResponseCacheScope,
    question: string,
    control?: CacheControl,
    signal?: AbortSignal,
    embedding?: readonly number[],
    exactMissed = false,
  ): Promise<LookupResult> {
    const fingerprint = scopeFingerprint(scope);
    const maxAgeMs = this.maxAgeMs(control);
    const fresh = (a: CachedAnswer): boolean =>
      a.scope === fingerprint && Date.now() - a.createdAt <= maxAgeMs;
    const exact = exactMissed
      ? null
      : await this.store.getExact(scope.tenantId, fingerprint, questionHash(question));
    if (exact && fresh(exact)) return { hit: true, type: 'exact', answer: exact, similarity: 1 };

    const vector = embedding ?? (await this.semantic.embed(question));
    if (!vector) return { hit: false };
    const matches = await this.semantic.nearest(
      scope.tenantId,
      fingerprint,
      vector,
      this.config.RESPONSE_CACHE_CANDIDATES,
      this.config.RESPONSE_CACHE_SIMILARITY_THRESHOLD,
    );
    const features = analyzeQuestion(question);
    let rejection: GuardRejection | undefined;
    const orphans: string[] = [];
    for (const match of matches) {
      if (exact && match.id === exact.entryId) continue;
      const candidate = await this.store.get(scope.tenantId, match.id);
      if (!candidate) {
        orphans.push(match.id);
        continue;
      }
      if (!fresh(candidate)) continue;
      const rejected = firstRejection(this.guards, features, analyzeQuestion(candidate.question));
      if (rejected) {
        this.stats.count(scope.tenantId, `guard:${rejected.guard}`);
        rejection ??= { ...rejected, similarity: round4(match.similarity), entryId: match.id };
        continue;
      }
      if (this.verifier && !(await this.verified(question, candidate, match.similarity, signal))) {
        this.stats.count(scope.tenantId, 'verifier:rejected');
        rejection ??= {
          guard: 'verifier',
          reason: this.verifier.name,
          similarity: round4(match.similarity),
          entryId: match.id,
        };
        continue;
      }
      if (orphans.length > 0) void this.dropOrphans(scope.tenantId, orphans);
      return { hit: true, type: 'semantic', answer: candidate, similarity: match.similarity };
    }
    if (orphans.length > 0) void this.dropOrphans(scope.tenantId, orphans);
    return { hit: false, rejection, embedding: vector };
  }

  /**
   * The exact entry and the `k` nearest semantic candidates of a question with each one's guard
   * verdict, regardless of the threshold; serves nothing and counts nothing (benchmarks, debugging).
   */
  async explain(
    scope: ResponseCacheScope,
    question: string,
    k = this.config.RESPONSE_CACHE_CANDIDATES,
  ): Promise<{ exact: CachedAnswer | null; candidates: CandidateExplanation[] }> {
    const fingerprint = scopeFingerprint(scope);
    const exact = await this.store.getExact(scope.tenantId, fingerprint, questionHash(question));
    const embedding = await this.semantic.embed(question);
    if (!embedding) return { exact, candidates: [] };
    const matches = await this.semantic.nearest(scope.tenantId, fingerprint, embedding, k, -1);
    const features = analyzeQuestion(question);
    const candidates: CandidateExplanation[] = [];
    for (const match of matches) {
      const candidate = await this.store.get(scope.tenantId, match.id);
      if (!candidate) continue;
      const rejected = firstRejection(this.guards, features, analyzeQuestion(candidate.question));
      candidates.push({
        entryId: match.id,
        question: candidate.question,
        similarity: match.similarity,
        rejection: rejected,
      });
    }
    return { exact, candidates };
  }

  /**
   * Stores a complete answer (finish reason `stop`, non-empty; or one choice that finished with
   * `tool_calls` and made them) and indexes its question.
   * @returns the entry, or null when the answer is not cacheable or storing failed
   */
  async storeAnswer(
    scope: ResponseCacheScope,
    question: string,
    result: ChatResult,
    embedding?: readonly number[],
    documents?: readonly string[],
  ): Promise<CachedAnswer | null> {
    const toolCalls = cacheableToolCalls(result);
    if (!toolCalls && (result.finishReason !== 'stop' || result.content.trim().length === 0)) return null;
    try {
      const fingerprint = scopeFingerprint(scope);
      const { entry, removed } = await this.store.put(
        {
          tenantId: scope.tenantId,
          scope: fingerprint,
          agent: scope.agent,
          model: scope.model,
          templateVersion: scope.templateVersion,
          question,
          content: result.content,
          finishReason: result.finishReason,
          ...(toolCalls ? { toolCalls } : {}),
          usage: result.usage,
          ...(documents?.length ? { documents: [...new Set(documents)] } : {}),
        },
        questionHash(question),
      );
      this.stats.count(scope.tenantId, 'store');
      this.stats.count(scope.tenantId, 'evict', removed.length);
      const vector = embedding ?? (await this.semantic.embed(question));
      if (vector) {
        await this.semantic.add({
          entryId: entry.entryId,
          tenantId: scope.tenantId,
          scope: fingerprint,
          agent: scope.agent,
          templateVersion: scope.templateVersion,
          embedding: vector,
          expiresAt: new Date(entry.createdAt + this.config.RESPONSE_CACHE_TTL_SECONDS * 1000),
        });
      }
      if (removed.length > 0) await this.semantic.remove(scope.tenantId, removed);
      return entry;
    } catch (e) {
      this.logger.warn(
        `cannot store an answer in the response cache: ${e instanceof Error ? e.message : String(e)}`,
      );
      return null;
    }
  }

  /** The single-flight leader: waits for another replica's identical call, or calls the engine and stores. */
  private async lead(
    request: ServeRequest,
    compute: () => Promise<ChatResult>,
    signal: AbortSignal | undefined,
    embedding?: readonly number[],
  ): Promise<FlightOutcome> {
    const { scope, question } = request;
    const fingerprint = scopeFingerprint(scope);
    const qhash = questionHash(question);
    const freshExact = async (): Promise<CachedAnswer | null> => {
      const entry = await this.store.getExact(scope.tenantId, fingerprint, qhash);
      return entry &&
        entry.scope === fingerprint &&
        Date.now() - entry.createdAt <= this.maxAgeMs(request.control)
        ? entry
        : null;
    };
    const acquire = (): Promise<FlightLock | null> =>
      this.store.acquireFlight(scope.tenantId, fingerprint, qhash).catch(() => null);
    let lock = await acquire();
    if (!lock) {
      const entry = await this.flights
        .waitFor(
          freshExact,
          () => this.store.flightHeld(scope.tenantId, fingerprint, qhash),
          this.config.RESPONSE_CACHE_SINGLE_FLIGHT_WAIT_MS,
          signal,
        )
        .catch(() => null);
      if (entry) return { entry };
      lock = await acquire();
    } else {
      // Double check: the previous leader may have stored the answer between our lookup and the lock.
      const entry = await freshExact().catch(() => null);
      if (entry) {
        await lock.release();
        return { entry };
      }
    }
    try {
      const result = await compute();
      return {
        result,
        entry: await this.storeAnswer(scope, question, result, embedding, request.documents),
      };
    } finally {
      await lock?.release();
    }
  }

  private servedByFlight(entry: CachedAnswer, request: ServeRequest, started: number): ServeResult {
    const tenantId = request.scope.tenantId;
    this.stats.count(tenantId, 'singleflight:wait');
    this.stats.count(tenantId, 'hit:exact');
    this.metrics?.recordResponseCacheLookup('exact', 1);
    const report: ResponseCacheReport = { hit: true, type: 'exact', similarity: 1, entryId: entry.entryId };
    (request.trace ?? NOOP_TURN_TRACE).span('response-cache', { singleFlight: true }).end(report);
    return this.hit(entry, report, started);
  }

  /** A cached answer shaped as an engine result (the caller replays it to its client). */
  private hit(answer: CachedAnswer, report: ResponseCacheReport, started: number): ServeResult {
    void this.store.touch(answer.tenantId, answer.entryId).catch(() => undefined);
    return {
      result: {
        content: answer.content,
        finishReason: answer.finishReason,
        ...(answer.toolCalls?.length
          ? {
              choices: [
                {
                  index: 0,
                  content: answer.content,
                  toolCalls: answer.toolCalls,
                  logprobs: null,
                  finishReason: answer.finishReason,
                },
              ],
            }
          : {}),
        model: answer.model,
        usage: { promptTokens: 0, completionTokens: 0, cachedTokens: 0 },
        replica: RESPONSE_CACHE_REPLICA,
        timings: { ttftMs: 0, totalMs: performance.now() - started, itlMs: 0 },
      },
      report,
      cached: answer,
    };
  }

  private async verified(
    question: string,
    candidate: CachedAnswer,
    similarity: number,
    signal?: AbortSignal,
  ): Promise<boolean> {
    if (!this.verifier) return true;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.config.RESPONSE_CACHE_VERIFIER_TIMEOUT_MS);
    const onAbort = (): void => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.verifier.verify(
        { question, candidateQuestion: candidate.question, candidateAnswer: candidate.content, similarity },
        controller.signal,
      );
    } catch (e) {
      this.logger.warn(
        `verifier ${this.verifier.name} failed; candidate not served: ${e instanceof Error ? e.message : String(e)}`,
      );
      return false;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Counts a lookup that ended with the engine answering (in Redis and in Prometheus). */
  private countMiss(tenantId: string, rejection: GuardRejection | undefined): void {
    this.stats.count(tenantId, 'miss');
    if (rejection) this.metrics?.recordResponseCacheLookup('guard_rejected', rejection.similarity);
    else this.metrics?.recordResponseCacheLookup('miss');
  }

  private maxAgeMs(control?: CacheControl): number {
    const ttl = this.config.RESPONSE_CACHE_TTL_SECONDS;
    return Math.min(ttl, control?.maxAgeSeconds ?? ttl) * 1000;
  }

  private async dropOrphans(tenantId: string, ids: string[]): Promise<void> {
    await this.semantic.remove(tenantId, ids).catch(() => undefined);
  }
}

const round4 = (x: number): number => Math.round(x * 10_000) / 10_000;

/** The tool calls of an answer that is exactly one complete tool-calling choice, else undefined. */
function cacheableToolCalls(result: ChatResult): ToolCall[] | undefined {
  const choices = result.choices ?? [];
  const calls = choices[0]?.toolCalls ?? [];
  if (result.finishReason !== 'tool_calls' || choices.length !== 1 || calls.length === 0) return undefined;
  const complete = calls.every((c) => c.function.name !== '' && isJson(c.function.arguments));
  return complete ? calls : undefined;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
