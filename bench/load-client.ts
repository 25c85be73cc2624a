import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { Agent, type Dispatcher, request } from 'undici';

/**
 * bench:load's HTTP client (undici): one streamed turn or one chat completion per call, each returning a
 * `Sample` of how it ended as its client saw it. Shared by the main process and the burst's client threads
 * (bench/load-burst-worker.ts).
 */

/** How one request ended, as its client saw it. */
export interface Sample {
  target: string;
  startedAt: number;
  endedAt: number;
  /** HTTP status; 0 = no response (connection error, or the client gave up first). */
  status: number;
  outcome: 'ok' | 'shed' | 'error' | 'abandoned';
  code?: string;
  /** A shed turn's `reason` (kvchat: `queue_full`, `queue_timeout`; nginx: `proxy_max_conns`). */
  reason?: string;
  /** Client TTFT: request sent → first token, ms. */
  ttftMs?: number;
  /** The engine's own TTFT for the same request, ms (turn event timings). */
  engineTtftMs?: number;
  /** Request sent → first token, or → the whole refusal (shed, error), ms. */
  firstAnswerMs?: number;
  /** The user message's unique tag (to find it in the database). */
  tag?: string;
  /** kvchat's `x-kvchat-cache` response header (`off`, `miss`, `hit-exact`, `hit-semantic`). */
  cache?: string;
}

/** The problem code of a refusal body, if it is one. */
function problemCode(text: string): string | undefined {
  return problemField(text, 'code');
}

/** A string field of a problem+json body, or undefined. */
function problemField(text: string, field: 'code' | 'reason'): string | undefined {
  try {
    const value = (JSON.parse(text) as Record<string, unknown>)[field];
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** How a `post` ended: its status and, unless it was a 200 handed to `onData`, its body as text. */
interface Posted {
  status: number;
  text: string;
}

/**
 * One POST through undici's dispatch handler API: each chunk of a 200 response goes to `onData` in the
 * read that brought it, with no body stream and no async iterator per chunk (a streamed turn is ~35
 * chunks, and this client shares the machine's cores with the server it measures); any other status's
 * body is collected as text. `onStatus` hears the status as soon as the headers are in.
 * @throws the connection's or the abort signal's error
 */
function post(
  dispatcher: Dispatcher,
  url: URL,
  headers: Record<string, string>,
  body: string,
  signal: AbortSignal,
  onData: (chunk: Buffer) => void,
  onStatus?: (status: number) => void,
): Promise<Posted> {
  return new Promise<Posted>((resolve, reject) => {
    let status = 0;
    const parts: Buffer[] = [];
    let controller: Dispatcher.DispatchController | undefined;
    const onAbort = (): void => controller?.abort(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    const settle = (error?: Error): void => {
      signal.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else resolve({ status, text: Buffer.concat(parts).toString('utf8') });
    };
    dispatcher.dispatch(
      { origin: url.origin, path: url.pathname, method: 'POST', headers, body },
      {
        onRequestStart: (c) => {
          controller = c;
          if (signal.aborted) c.abort(signal.reason as Error);
        },
        onResponseStart: (_c, statusCode) => {
          status = statusCode;
          onStatus?.(statusCode);
        },
        onResponseData: (_c, chunk) => {
          if (status === 200) onData(chunk);
          else parts.push(chunk);
        },
        onResponseEnd: () => settle(),
        onResponseError: (_c, error) => settle(error),
      },
    );
  });
}

/** Shed by admission control (src/lifecycle/turn-admission): 503 `Overloaded`. */
export const SHED_CODE = 'Overloaded';

export class Client {
  readonly dispatcher: Agent;
  constructor(connections: number) {
    this.dispatcher = new Agent({ connections, keepAliveTimeout: 60_000, pipelining: 1 });
  }

  /** Posts one streamed turn and follows its SSE stream to the `turn` (or `error`) event. */
  async turn(
    apiUrl: string,
    apiKey: string,
    conversationId: string,
    content: string,
    tag: string,
    maxTokens: number,
    giveUpMs: number,
  ): Promise<Sample> {
    const started = performance.now();
    const sample: Sample = {
      target: apiUrl,
      startedAt: Date.now(),
      endedAt: 0,
      status: 0,
      outcome: 'error',
      tag,
    };
    const signal = AbortSignal.timeout(giveUpMs);
    try {
      let done = false;
      const parser = createParser({
        onEvent: (event: EventSourceMessage) => {
          if (event.event === 'token') {
            if (sample.ttftMs === undefined) {
              sample.ttftMs = performance.now() - started;
              sample.firstAnswerMs = sample.ttftMs;
            }
          } else if (event.event === 'turn' || event.event === 'done') {
            const data = JSON.parse(event.data) as {
              assistantMessage?: { timings?: { engineTtftMs?: number; ttftMs?: number } };
              timings?: { engineTtftMs?: number; ttftMs?: number };
            };
            const timings = data.assistantMessage?.timings ?? data.timings;
            sample.engineTtftMs = timings?.engineTtftMs ?? timings?.ttftMs;
            sample.outcome = 'ok';
            done = true;
          } else if (event.event === 'error') {
            sample.code = problemCode(event.data) ?? 'StreamError';
            sample.outcome = 'error';
            done = true;
          }
        },
      });
      const decoder = new TextDecoder();
      const res = await post(
        this.dispatcher,
        new URL(`${apiUrl}/v1/conversations/${conversationId}/turns`),
        {
          authorization: `Bearer ${apiKey}`,
          'content-type': 'application/json',
          accept: 'text/event-stream',
        },
        JSON.stringify({ content, maxTokens }),
        signal,
        (chunk) => parser.feed(decoder.decode(chunk, { stream: true })),
        (status) => (sample.status = status),
      );
      if (res.status !== 200) {
        sample.firstAnswerMs = performance.now() - started;
        sample.code = problemCode(res.text);
        sample.reason = problemField(res.text, 'reason');
        sample.outcome = sample.code === SHED_CODE ? 'shed' : 'error';
        return sample;
      }
      if (!done) sample.code = 'StreamEndedEarly';
    } catch (e) {
      if (signal.aborted) {
        sample.outcome = 'abandoned';
        sample.code = 'ClientGaveUp';
      } else {
        sample.outcome = 'error';
        sample.code = (e as { code?: string }).code ?? (e instanceof Error ? e.name : 'Error');
      }
    } finally {
      sample.endedAt = Date.now();
    }
    return sample;
  }

  /**
   * Posts one OpenAI chat completion: streamed (read to `[DONE]`, TTFT = first content delta) or not
   * (TTFT = the whole answer).
   */
  async chat(
    target: string,
    url: string,
    headers: Record<string, string>,
    body: Record<string, unknown>,
    giveUpMs: number,
    stream: boolean,
  ): Promise<Sample> {
    const started = performance.now();
    const sample: Sample = { target, startedAt: Date.now(), endedAt: 0, status: 0, outcome: 'error' };
    const signal = AbortSignal.timeout(giveUpMs);
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher: this.dispatcher,
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ ...body, stream }),
        signal,
      });
      sample.status = res.statusCode;
      const cache = res.headers['x-kvchat-cache'];
      if (typeof cache === 'string') sample.cache = cache;
      if (res.statusCode !== 200 || !stream) {
        const text = await res.body.text();
        sample.firstAnswerMs = performance.now() - started;
        if (res.statusCode === 200) {
          sample.ttftMs = sample.firstAnswerMs;
          sample.outcome = text.includes('"choices"') ? 'ok' : 'error';
          if (sample.outcome === 'error') sample.code = 'NoChoices';
          return sample;
        }
        sample.code = problemCode(text) ?? `HTTP${res.statusCode}`;
        sample.outcome = sample.code === SHED_CODE ? 'shed' : 'error';
        return sample;
      }
      const parser = createParser({
        onEvent: (event: EventSourceMessage) => {
          if (event.data === '[DONE]') {
            sample.outcome = 'ok';
            return;
          }
          if (sample.ttftMs === undefined && event.data.includes('"content"')) {
            sample.ttftMs = performance.now() - started;
            sample.firstAnswerMs = sample.ttftMs;
          }
        },
      });
      const decoder = new TextDecoder();
      for await (const chunk of res.body) parser.feed(decoder.decode(chunk as Buffer, { stream: true }));
      if (sample.outcome !== 'ok') sample.code = 'StreamEndedEarly';
    } catch (e) {
      sample.outcome = signal.aborted ? 'abandoned' : 'error';
      sample.code = signal.aborted ? 'ClientGaveUp' : ((e as { code?: string }).code ?? 'Error');
    } finally {
      sample.endedAt = Date.now();
    }
    return sample;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}
