import { Injectable } from '@nestjs/common';
import pLimit from 'p-limit';
import { AdmissionConfig } from '../config/admission.config';
import { Overloaded } from './lifecycle.errors';

/** Why a turn was shed: no room in flight nor in the queue, or it waited in the queue too long. */
export type ShedReason = 'queue_full' | 'queue_timeout';
export const SHED_REASONS: readonly ShedReason[] = ['queue_full', 'queue_timeout'];

/** Ends a turn's hold on its slot; idempotent. */
export type ReleaseSlot = () => void;

/** The outcome of `admit`: a slot, or the client left while the turn was queued (it never starts). */
export type Admission = { admitted: true; release: ReleaseSlot } | { admitted: false };

/**
 * Admission control of turns in this process. At most TURNS_MAX_IN_FLIGHT turns hold a slot; the next
 * TURNS_MAX_QUEUED wait for one in arrival order (p-limit's FIFO); a turn beyond both, or one that waited
 * TURN_QUEUE_TIMEOUT_MS, is refused at once with `Overloaded` (503, `Retry-After`) — a fast, cheap answer
 * while the process still has time for the turns it took, rather than every turn slowing down together.
 * A queued turn whose client goes away leaves the queue and never starts.
 *
 * Its counts are read at scrape time by src/observability/admission-metrics.collector.ts
 * (`kvchat_turns_shed_total{reason}`, `kvchat_turns_abandoned_in_queue_total`, `kvchat_turns_in_flight`,
 * `kvchat_turns_queued`).
 */
@Injectable()
export class TurnAdmission {
  private readonly limit: pLimit.Limit;
  /** Turns admitted to the queue that have not started, timed out or been abandoned. */
  private waiting = 0;
  /** Turns refused so far, by reason (since the process started). */
  readonly shedTotal: Record<ShedReason, number> = { queue_full: 0, queue_timeout: 0 };
  /** Queued turns whose client went away before they started (since the process started). */
  abandonedInQueueTotal = 0;

  constructor(private readonly config: AdmissionConfig) {
    this.limit = pLimit(config.TURNS_MAX_IN_FLIGHT);
  }

  /** Turns holding a slot now. */
  get inFlight(): number {
    return this.limit.activeCount;
  }

  /** Turns waiting for a slot now (abandoned and timed-out ones excluded). */
  get queued(): number {
    return this.waiting;
  }

  /**
   * Takes a slot for one turn, waiting in the queue when none is free.
   * @param signal the client's disconnect: while queued, the turn leaves the queue (`admitted: false`)
   * @returns the slot's release (call it when the turn's response is over), or `admitted: false`
   * @throws Overloaded (503, `retryAfterSeconds`) when the queue is full or the wait ran past TURN_QUEUE_TIMEOUT_MS
   */
  admit(signal: AbortSignal): Promise<Admission> {
    const capacity = this.config.TURNS_MAX_IN_FLIGHT + this.config.TURNS_MAX_QUEUED;
    if (this.limit.activeCount + this.waiting >= capacity) return Promise.reject(this.refuse('queue_full'));
    const queued = this.limit.activeCount + this.waiting >= this.config.TURNS_MAX_IN_FLIGHT;
    this.waiting++;
    return new Promise<Admission>((resolve, reject) => {
      let settled = false;
      const leave = (): boolean => {
        if (settled) return false;
        settled = true;
        this.waiting--;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        return true;
      };
      const onAbort = (): void => {
        if (!leave()) return;
        this.abandonedInQueueTotal++;
        resolve({ admitted: false });
      };
      const timer = queued
        ? setTimeout(() => {
            if (leave()) reject(this.refuse('queue_timeout'));
          }, this.config.TURN_QUEUE_TIMEOUT_MS)
        : undefined;
      if (queued) signal.addEventListener('abort', onAbort, { once: true });
      // The slot is held until `release`; an entry that left the queue runs as a no-op when its turn comes.
      void this.limit(() => {
        if (signal.aborted) onAbort();
        if (!leave()) return undefined;
        return new Promise<void>((release) => {
          let released = false;
          resolve({
            admitted: true,
            release: () => {
              if (released) return;
              released = true;
              release();
            },
          });
        });
      });
    });
  }

  private refuse(reason: ShedReason): Overloaded {
    this.shedTotal[reason]++;
    const detail =
      reason === 'queue_full'
        ? `This replica is at its limit of turns (${this.config.TURNS_MAX_IN_FLIGHT} running, ${this.config.TURNS_MAX_QUEUED} queued); retry shortly.`
        : `No turn slot was free within ${this.config.TURN_QUEUE_TIMEOUT_MS} ms; retry shortly.`;
    return new Overloaded(detail, { reason, retryAfterSeconds: this.config.TURN_SHED_RETRY_AFTER_SECONDS });
  }
}
