import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { Agent, request } from 'undici';

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
      const res = await request(`${apiUrl}/v1/conversations/${conversationId}/turns`, {
        method: 'POST',
        dispatcher: this.dispatcher,
        headers: {
          authorization: `Bearer ${apiKey}`,
          'content-type': 'application/json',
          accept: 'text/event-stream',
        },
        body: JSON.stringify({ content, maxTokens }),
        signal,
      });
      sample.status = res.statusCode;
      if (res.statusCode !== 200) {
        const text = await res.body.text();
        sample.firstAnswerMs = performance.now() - started;
        sample.code = problemCode(text);
        sample.reason = problemField(text, 'reason');
        sample.outcome = sample.code === SHED_CODE ? 'shed' : 'error';
        return sample;
      }
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
      for await (const chunk of res.body) {
        parser.feed(decoder.decode(chunk as Buffer, { stream: true }));
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
