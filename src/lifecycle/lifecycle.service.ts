import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { ProcessConfig, type ProcessRole } from '../config/process.config';

/** How a drain ended: nothing was left in flight, or the drain time ran out first. */
export type DrainOutcome = 'idle' | 'expired';

/**
 * The process's place in its life: serving, or draining before it stops. One instance per app,
 * injectable anywhere (global module). Shutdown (`installGracefulShutdown`) calls `beginDrain` on
 * SIGTERM; from then on readiness is 503 so the orchestrator stops sending traffic, work already
 * in flight may finish until SHUTDOWN_DRAIN_MS has passed, and `drainExpired` aborts at that deadline
 * so what is still running can stop and be marked failed.
 *
 * Turn code consults it: `draining` (refuse or shorten new work), `remainingDrainMs()` (does a turn
 * still fit?), `drainExpired` (an AbortSignal to pass down), `track()` (hold the drain open while a
 * unit of work runs).
 */
@Injectable()
export class LifecycleService implements OnApplicationShutdown {
  private readonly logger = new Logger(LifecycleService.name);
  /** What this process runs (KVCHAT_ROLE). */
  readonly role: ProcessRole;
  /** Drain time, ms (SHUTDOWN_DRAIN_MS). */
  readonly drainMs: number;
  private startedAt: number | null = null;
  private reason: string | null = null;
  private inFlight = 0;
  private readonly expiry = new AbortController();
  private expiryTimer?: NodeJS.Timeout;
  private readonly idleWaiters = new Set<() => void>();

  constructor(config: ProcessConfig) {
    this.role = config.KVCHAT_ROLE;
    this.drainMs = config.SHUTDOWN_DRAIN_MS;
  }

  /** True once shutdown has begun. */
  get draining(): boolean {
    return this.startedAt !== null;
  }

  /** When the drain began (ms since epoch) and why (the signal), or null while serving. */
  get drain(): { startedAt: number; deadline: number; reason: string } | null {
    return this.startedAt === null
      ? null
      : { startedAt: this.startedAt, deadline: this.startedAt + this.drainMs, reason: this.reason ?? '' };
  }

  /** Aborted when the drain time runs out; work still running then should stop. */
  get drainExpired(): AbortSignal {
    return this.expiry.signal;
  }

  /** Drain time left, ms: Infinity while serving, 0 once it ran out. */
  remainingDrainMs(now = Date.now()): number {
    return this.startedAt === null ? Infinity : Math.max(0, this.startedAt + this.drainMs - now);
  }

  /** Requests and jobs this process holds the drain open for. */
  get inFlightCount(): number {
    return this.inFlight;
  }

  /** Does this process take jobs from the queues (`worker`, `all`)? */
  get runsJobs(): boolean {
    return this.role !== 'api';
  }

  /** Does this process serve the HTTP API (`api`, `all`)? A worker serves only probes and metrics. */
  get servesApi(): boolean {
    return this.role !== 'worker';
  }

  /**
   * Starts the drain (idempotent): readiness is 503 from now on, and `drainExpired` aborts after
   * SHUTDOWN_DRAIN_MS. @param reason what started it (a signal name), for logs and the readiness body
   */
  beginDrain(reason: string): void {
    if (this.startedAt !== null) return;
    this.startedAt = Date.now();
    this.reason = reason;
    this.logger.log(
      `${reason}: draining (readiness 503; ${this.inFlight} in flight, up to ${this.drainMs} ms to finish)`,
    );
    this.expiryTimer = setTimeout(() => this.expire(), this.drainMs);
    this.expiryTimer.unref();
    this.notifyIfIdle();
  }

  /** Marks one unit of work in flight; call the returned function (once) when it ends. */
  track(): () => void {
    this.inFlight++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.inFlight--;
      this.notifyIfIdle();
    };
  }

  /**
   * Resolves once the drain has begun and nothing tracked is in flight (`idle`), or when the drain
   * time runs out (`expired`), whichever comes first.
   */
  settled(): Promise<DrainOutcome> {
    if (this.expiry.signal.aborted) return Promise.resolve('expired');
    if (this.draining && this.inFlight === 0) return Promise.resolve('idle');
    return new Promise((resolve) => {
      const onExpired = (): void => {
        this.idleWaiters.delete(onIdle);
        resolve('expired');
      };
      const onIdle = (): void => {
        this.expiry.signal.removeEventListener('abort', onExpired);
        resolve('idle');
      };
      this.idleWaiters.add(onIdle);
      this.expiry.signal.addEventListener('abort', onExpired, { once: true });
    });
  }

  /**
   * Resolves true once nothing tracked is in flight, or false after `timeoutMs`. After the drain time
   * ran out, shutdown gives the aborted work this long to record its failure before closing.
   */
  idleWithin(timeoutMs: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.idleWaiters.delete(onIdle);
        resolve(false);
      }, timeoutMs);
      const onIdle = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.add(onIdle);
    });
  }

  onApplicationShutdown(): void {
    clearTimeout(this.expiryTimer);
  }

  private expire(): void {
    if (this.expiry.signal.aborted) return;
    this.logger.warn(`drain time (${this.drainMs} ms) ran out with ${this.inFlight} still in flight`);
    this.expiry.abort(new Error(`drain time of ${this.drainMs} ms ran out`));
  }

  private notifyIfIdle(): void {
    if (!this.draining || this.inFlight > 0) return;
    const waiters = [...this.idleWaiters];
    this.idleWaiters.clear();
    for (const w of waiters) w();
  }
}
