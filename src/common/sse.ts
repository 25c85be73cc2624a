import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';

/**
 * Writes Server-Sent Events to a Fastify reply. Headers are sent lazily with the first event, so
 * an error before anything was streamed can still become an ordinary problem response.
 *
 * Events written in one turn of the event loop leave in one socket write: the first corks the
 * response and the loop's check phase (setImmediate) uncorks it. An engine's read usually carries
 * several tokens, so this turns a write per token into a write per read, and adds no delay beyond
 * the current loop iteration.
 */
export class SseWriter {
  private started = false;
  private corked = false;
  private readonly raw: ServerResponse;
  private readonly uncork = (): void => {
    this.corked = false;
    this.raw.uncork();
  };

  constructor(
    private readonly reply: FastifyReply,
    private readonly extraHeaders: Record<string, string> = {},
  ) {
    this.raw = reply.raw;
  }

  /** True once headers are out: errors must then be sent as an `error` event. */
  get isStarted(): boolean {
    return this.started;
  }

  /** Sends one event; `data` is JSON-encoded (one line, so no `data:` splitting is needed). */
  send(event: string, data: unknown): void {
    this.start();
    if (this.raw.writableEnded || this.raw.destroyed) return;
    this.cork();
    this.raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** Sends a raw `data:` line without an event name (OpenAI-style streams). */
  sendData(data: string): void {
    this.start();
    if (this.raw.writableEnded || this.raw.destroyed) return;
    this.cork();
    this.raw.write(`data: ${data}\n\n`);
  }

  /** Ends the stream; whatever is corked leaves with it. */
  end(): void {
    this.start();
    if (!this.raw.writableEnded) this.raw.end();
  }

  private cork(): void {
    if (this.corked) return;
    this.corked = true;
    this.raw.cork();
    setImmediate(this.uncork);
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
