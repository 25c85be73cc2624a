import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';

/**
 * How an SseWriter batches events into socket writes. `flushIntervalMs` 0 (the default) writes every
 * event-loop iteration's events in one write; above 0, events sent with `hold` (tokens) are written at
 * most once per that many milliseconds, except the first one, which never waits (it is the client's TTFT).
 */
export interface SseWriterOptions {
  /** Headers added to the stream's response (e.g. `idempotent-replayed`). */
  headers?: Record<string, string>;
  /** Longest a held event (a token after the first) waits for the next write, ms; 0 = no wait. */
  flushIntervalMs?: number;
}

/**
 * Writes Server-Sent Events to a Fastify reply. Headers are sent lazily with the first event, so
 * an error before anything was streamed can still become an ordinary problem response.
 *
 * Events written in one turn of the event loop leave in one socket write: the first corks the
 * response and the loop's check phase (setImmediate) uncorks it. An engine's read usually carries
 * one token, so at the engine's pace that is still about one write per token, and a socket write is
 * the largest single cost of streaming a long answer (docs/scaling.md, "Fifth pass"). With
 * `flushIntervalMs` > 0, tokens after the first (`hold`) stay corked until that interval has passed
 * since the last write; any other event (citations, the final `turn`, an error) and `end()` write at
 * once, with whatever tokens are held before them, so the order of events never changes.
 */
export class SseWriter {
  private started = false;
  private corked = false;
  /** A flush is scheduled at the end of this loop iteration. */
  private immediate?: NodeJS.Immediate;
  /** A flush is scheduled when the interval since the last write has passed. */
  private timer?: NodeJS.Timeout;
  /** performance.now() of the last write that carried a held event; -Infinity before the first. */
  private heldFlushedAt = Number.NEGATIVE_INFINITY;
  private holding = false;
  private readonly raw: ServerResponse;
  private readonly extraHeaders: Record<string, string>;
  private readonly flushIntervalMs: number;
  private readonly flush = (): void => {
    this.immediate = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.holding) this.heldFlushedAt = performance.now();
    this.holding = false;
    this.corked = false;
    this.raw.uncork();
  };

  constructor(
    private readonly reply: FastifyReply,
    options: SseWriterOptions = {},
  ) {
    this.raw = reply.raw;
    this.extraHeaders = options.headers ?? {};
    this.flushIntervalMs = options.flushIntervalMs ?? 0;
  }

  /** True once headers are out: errors must then be sent as an `error` event. */
  get isStarted(): boolean {
    return this.started;
  }

  /**
   * Sends one event; `data` is JSON-encoded (one line, so no `data:` splitting is needed). `hold`: the
   * event may wait up to `flushIntervalMs` to share a write with the ones after it (tokens).
   */
  send(event: string, data: unknown, hold = false): void {
    this.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`, hold);
  }

  /** Sends a raw `data:` line without an event name (OpenAI-style streams); `hold` as for `send`. */
  sendData(data: string, hold = false): void {
    this.write(`data: ${data}\n\n`, hold);
  }

  /** Ends the stream; whatever is corked leaves with it. */
  end(): void {
    this.start();
    if (this.immediate) clearImmediate(this.immediate);
    if (this.timer) clearTimeout(this.timer);
    this.immediate = this.timer = undefined;
    if (!this.raw.writableEnded) this.raw.end();
  }

  private write(text: string, hold: boolean): void {
    this.start();
    if (this.raw.writableEnded || this.raw.destroyed) return;
    if (!this.corked) {
      this.corked = true;
      this.raw.cork();
    }
    this.raw.write(text);
    if (this.immediate) return;
    const wait = hold ? this.heldFlushedAt + this.flushIntervalMs - performance.now() : 0;
    if (hold) this.holding = true;
    if (wait <= 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.immediate = setImmediate(this.flush);
    } else {
      this.timer ??= setTimeout(this.flush, wait);
    }
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.reply.hijack();
    this.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-request-id': String(this.reply.request.id),
      // Set before the first event (the API-key hook's x-ratelimit-*, the answering provider's x-kvchat-*);
      // hijacking drops the reply's own headers.
      ...Object.fromEntries(
        Object.entries(this.reply.getHeaders()).filter(
          ([name]) => name.startsWith('x-ratelimit-') || name.startsWith('x-kvchat-'),
        ),
      ),
      ...this.extraHeaders,
    });
  }
}

/**
 * An AbortSignal that fires when the client closes the connection before the response finished.
 */
export function clientDisconnectSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}
