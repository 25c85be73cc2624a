import { AbortedError } from './timing';

/**
 * Continuous batching admission, first come first served as vLLM's default scheduler: at most
 * `maxNumSeqs` requests run at once; the others wait in a FIFO queue. The head of the queue is
 * admitted as soon as a slot is free AND its `tryAdmit` succeeds (the KV pool can hold it); a head
 * that does not fit blocks the queue, as in vLLM's FCFS policy. The wait is part of TTFT.
 */
export class BatchScheduler {
  private readonly waiting: WaitingEntry[] = [];
  private running = 0;

  constructor(private readonly maxNumSeqs: number) {}

  get numRunning(): number {
    return this.running;
  }

  get numWaiting(): number {
    return this.waiting.length;
  }

  /**
   * Waits for admission. `tryAdmit` is called when the request reaches the head of the queue and a
   * slot is free; it returns false when resources are short (it will be retried when a running
   * request finishes). Rejects with `AbortedError` when the signal aborts while waiting.
   */
  admit(tryAdmit: () => boolean, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(new AbortedError());
    return new Promise<void>((resolve, reject) => {
      const entry: WaitingEntry = {
        tryAdmit,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) {
          this.waiting.splice(i, 1);
          reject(new AbortedError());
          this.pump(); // the aborted head may have been blocking the queue
        }
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
      this.pump();
    });
  }

  /** A running request finished (or was aborted): frees its slot and admits waiting ones. */
  release(): void {
    if (this.running > 0) this.running--;
    this.pump();
  }

  /** Admits waiting requests in order while slots are free and the head fits. */
  pump(): void {
    while (this.waiting.length > 0 && this.running < this.maxNumSeqs) {
      const head = this.waiting[0];
      if (!head.tryAdmit()) return;
      this.waiting.shift();
      this.running++;
      head.resolve();
    }
  }
}

interface WaitingEntry {
  tryAdmit: () => boolean;
  resolve: () => void;
}
