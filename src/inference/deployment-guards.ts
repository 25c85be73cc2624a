import { Injectable } from '@nestjs/common';
import {
  BrokenCircuitError,
  circuitBreaker,
  ConsecutiveBreaker,
  type CircuitBreakerPolicy,
  CircuitState,
  handleWhen,
  IsolatedCircuitError,
} from 'cockatiel';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { InferenceConfig } from '../config/inference.config';
import type { Deployment } from './catalogue/model-catalogue';
import { EngineError, EngineStreamCut, EngineTimeout, EngineUnavailable } from './inference.errors';

/** Why a deployment was not asked: its breaker is open (or cooling down after `Retry-After`), or its rpm/tpm is spent. */
export type SkipReason = 'circuit-open' | 'rpm' | 'tpm';

/** The outcome of one target of a request. */
export interface ProviderAttempt {
  /** Catalogue deployment id (`engine` for the default catalogue). */
  deployment: string;
  provider: string;
  /** The public model it serves. */
  model: string;
  outcome: 'ok' | 'failed' | 'skipped';
  /** Failed: the Engine* error code and the upstream HTTP status when there was one. */
  code?: string;
  status?: number;
  /** Skipped: why. */
  reason?: SkipReason;
  /** Wall-clock time of the attempt, ms (0 when skipped). */
  ms: number;
}

/**
 * The attempts as one header value, in order: `deployment=status` for a failure (the upstream status, else
 * the error code), `deployment=skip reason` for a skip, `deployment=ok` for the answer, e.g.
 * `openai-a=429,anthropic-b=ok`.
 */
export function describeAttempts(attempts: readonly ProviderAttempt[]): string {
  return attempts
    .map(
      (a) =>
        `${a.deployment}=${a.outcome === 'ok' ? 'ok' : a.outcome === 'skipped' ? (a.reason ?? 'skipped') : (a.status ?? a.code ?? 'failed')}`,
    )
    .join(',');
}

/** A failure that makes the next target worth trying: the deployment, not the request, is at fault. */
export function isDeploymentFailure(e: unknown): boolean {
  if (e instanceof EngineUnavailable || e instanceof EngineTimeout || e instanceof EngineStreamCut)
    return true;
  if (e instanceof EngineError) {
    const status = e.extensions.status;
    return typeof status !== 'number' || status === 0 || status >= 500 || status === 408 || status === 409;
  }
  return false;
}

/** The skip as an error thrown inside the breaker (so rpm/tpm and open circuits read alike). */
class DeploymentSkipped extends Error {
  constructor(readonly reason: SkipReason) {
    super(reason);
  }
}

/**
 * Per-deployment guards of the catalogue's targets, all in this process:
 * - for a deployment with a base URL, a circuit breaker (cockatiel): PROVIDER_BREAKER_FAILURES consecutive deployment failures (429, 5xx,
 *   unreachable, first-token timeout) open it; it skips the deployment for PROVIDER_BREAKER_COOLDOWN_MS,
 *   then lets one trial request through (half-open). A `Retry-After` on a 429/503 isolates it for that long.
 * - the deployment's `rpm` (one point per request) and `tpm` (tokens charged after each answer), one-minute
 *   windows (rate-limiter-flexible, in memory: each api replica counts its own share).
 * - counters of attempts by model, deployment, provider and outcome, read by the Prometheus collector.
 */
@Injectable()
export class DeploymentGuards {
  private readonly breakers = new Map<string, CircuitBreakerPolicy>();
  private readonly rpm = new Map<string, RateLimiterMemory>();
  private readonly tpm = new Map<string, RateLimiterMemory>();
  private readonly counts = new Map<
    string,
    { attempt: Omit<ProviderAttempt, 'ms' | 'code' | 'status'>; n: number }
  >();

  constructor(private readonly config: InferenceConfig) {}

  private breaker(id: string): CircuitBreakerPolicy {
    let b = this.breakers.get(id);
    if (!b) {
      b = circuitBreaker(handleWhen(isDeploymentFailure), {
        halfOpenAfter: this.config.PROVIDER_BREAKER_COOLDOWN_MS,
        breaker: new ConsecutiveBreaker(this.config.PROVIDER_BREAKER_FAILURES),
      });
      this.breakers.set(id, b);
    }
    return b;
  }

  /**
   * Runs `call` on `deployment` unless a guard skips it.
   * @returns the result, or `{ skipped }` when the breaker is open or rpm/tpm is spent (`call` not run)
   * @throws what `call` throws (the breaker counts deployment failures)
   */
  async run<T>(
    deployment: Deployment,
    call: () => Promise<T>,
  ): Promise<{ value: T } | { skipped: SkipReason }> {
    try {
      const guarded = async (): Promise<T> => {
        await this.admit(deployment);
        return call();
      };
      // The engine replicas (vLLM without a base URL) have per-replica health from EndpointRouter's probes,
      // which takes a dead replica out and brings it back: a breaker over the whole pool would only add a
      // blind cool-down.
      const value = deployment.baseURL ? await this.breaker(deployment.id).execute(guarded) : await guarded();
      return { value };
    } catch (e) {
      if (e instanceof BrokenCircuitError || e instanceof IsolatedCircuitError)
        return { skipped: 'circuit-open' };
      if (e instanceof DeploymentSkipped) return { skipped: e.reason };
      throw e;
    }
  }

  /** Takes one request of the deployment's rpm; refuses when rpm or tpm is spent for this minute. */
  private async admit(d: Deployment): Promise<void> {
    if (d.tpm) {
      const used = await this.limiter(this.tpm, d.id, d.tpm).get(d.id);
      if (used && used.consumedPoints >= d.tpm) throw new DeploymentSkipped('tpm');
    }
    if (d.rpm) {
      try {
        await this.limiter(this.rpm, d.id, d.rpm).consume(d.id, 1);
      } catch {
        throw new DeploymentSkipped('rpm');
      }
    }
  }

  /** Charges an answer's tokens to the deployment's tpm window. */
  async chargeTokens(d: Deployment, tokens: number): Promise<void> {
    if (d.tpm && tokens > 0) await this.limiter(this.tpm, d.id, d.tpm).penalty(d.id, tokens);
  }

  private limiter(map: Map<string, RateLimiterMemory>, id: string, points: number): RateLimiterMemory {
    let l = map.get(id);
    if (!l) {
      l = new RateLimiterMemory({ points, duration: 60 });
      map.set(id, l);
    }
    return l;
  }

  /** Opens the deployment's breaker for `ms` (an upstream's `Retry-After`), then lets it close again. */
  coolDown(id: string, ms: number): void {
    const handle = this.breaker(id).isolate();
    setTimeout(() => handle.dispose(), ms).unref();
  }

  /** Counts an attempt (Prometheus `kvchat_provider_attempts_total`). */
  count(a: ProviderAttempt): void {
    const key = `${a.model}\u0000${a.deployment}\u0000${a.provider}\u0000${a.outcome}\u0000${a.reason ?? ''}`;
    const entry = this.counts.get(key);
    if (entry) entry.n++;
    else
      this.counts.set(key, {
        attempt: {
          model: a.model,
          deployment: a.deployment,
          provider: a.provider,
          outcome: a.outcome,
          ...(a.reason ? { reason: a.reason } : {}),
        },
        n: 1,
      });
  }

  /** Attempts so far by model, deployment, provider, outcome (and skip reason). */
  attemptCounts(): { attempt: Omit<ProviderAttempt, 'ms' | 'code' | 'status'>; n: number }[] {
    return [...this.counts.values()];
  }

  /** Deployments whose breaker is open or isolated (skipped now, or until a trial request succeeds). */
  openCircuits(): string[] {
    return [...this.breakers.entries()]
      .filter(([, b]) => b.state === CircuitState.Open || b.state === CircuitState.Isolated)
      .map(([id]) => id);
  }
}
