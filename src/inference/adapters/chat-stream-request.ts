import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { type Dispatcher, request } from 'undici';

/**
 * A streamed Chat Completions response: its headers and its chunks, parsed as they arrive, to be read one
 * way only: pulled (`chunks`) or pushed (`forEachChunk`, no promise per chunk: the turn's hot path).
 */
export interface ChatStreamResponse {
  headers: Headers;
  chunks: AsyncIterable<ChatCompletionChunk>;
  /**
   * Calls `onChunk` with each chunk as its bytes arrive, synchronously in the socket's read; resolves at
   * `[DONE]` or at the end of the body. Rejects as `chunks` throws (APIError for an `error` object in the
   * stream, APIUserAbortError when the signal fired, `Error('terminated: …')` when the connection broke),
   * and with `onChunk`'s own error, unchanged, when it throws; the body is then released.
   */
  forEachChunk: (onChunk: (chunk: ChatCompletionChunk) => void) => Promise<void>;
}

/** What one streamed Chat Completions POST needs. */
export interface ChatStreamRequest {
  /** `…/v1` of the server. */
  baseURL: string;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey: string;
  /** Extra request headers (the deployment's). */
  headers?: Record<string, string>;
  /** The request body (`stream: true`). */
  body: object;
  signal: AbortSignal;
  /** Until the response headers arrive, ms (as the SDK's `timeout`). */
  timeoutMs: number;
  /** The caller's connection pool; see JsonPostRequest's `dispatcher`. */
  dispatcher: Dispatcher;
}

/**
 * POSTs a streamed Chat Completions request with undici and parses its Server-Sent Events with
 * eventsource-parser, chunk by chunk. This is the hot path of every turn: the `openai` SDK's way (fetch, a
 * web ReadableStream, and an SSE decoder that copies its buffer once per event) cost ~10 % of the api's CPU
 * in the load benchmark's profile (docs/scaling.md). Failures are the SDK's own error classes, so callers
 * map them as they map the SDK's:
 * @throws APIError (status, error body and headers, as `APIError.generate` builds them) on a status ≥ 400
 * @throws APIConnectionTimeoutError when no response headers came within `timeoutMs`
 * @throws APIUserAbortError when `signal` aborted (also while reading the chunks)
 * @throws APIConnectionError when the server cannot be reached
 * The chunk iterator throws APIError for an `error` object in the stream and `Error('terminated: …')` when
 * the connection breaks mid-stream.
 */
export async function postChatStream(req: ChatStreamRequest): Promise<ChatStreamResponse> {
  let response: Dispatcher.ResponseData;
  try {
    response = await request(`${req.baseURL.replace(/\/+$/, '')}/chat/completions`, {
      method: 'POST',
      headers: requestHeaders('text/event-stream', req.apiKey, req.headers),
      body: JSON.stringify(req.body),
      signal: req.signal,
      headersTimeout: req.timeoutMs,
      // A stalled stream is cut by the caller (INFERENCE_FIRST_TOKEN_TIMEOUT_MS), as with the SDK.
      bodyTimeout: 0,
      dispatcher: req.dispatcher,
    });
  } catch (e) {
    throw transportError(e, req.signal);
  }
  const headers = headersOf(response);
  if (response.statusCode >= 400) {
    const text = await response.body.text().catch(() => '');
    throw statusError(response.statusCode, text, parseJson(text), headers);
  }
  return {
    headers,
    chunks: chunksOf(response.body, headers, req.signal),
    forEachChunk: (onChunk) => forEachChunkOf(response.body, headers, req.signal, onChunk),
  };
}

/** What one JSON POST to an engine needs (`/tokenize`, a non-streamed chat completion, …). */
export interface JsonPostRequest {
  /** The full URL. */
  url: string;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey: string;
  /** Extra request headers (the deployment's). */
  headers?: Record<string, string>;
  /** The request body, sent as JSON. */
  body: object;
  /** Until the response headers arrive, and then between body reads, ms (the SDK's `timeout`). */
  timeoutMs: number;
  /** Cancels the request (the caller's deadline, or its client went away). */
  signal?: AbortSignal;
  /**
   * The caller's connection pool (an undici `Agent` it owns). Required: without one undici takes the
   * process's global dispatcher, which is Node's bundled undici once anything has called `fetch`
   * (docs/scaling.md, "Tenth pass").
   */
  dispatcher: Dispatcher;
}

/**
 * POSTs a JSON body with undici and returns the parsed JSON answer: the per-turn `/tokenize` call. The
 * `openai` SDK's `client.post` does the same through fetch (a Request, a Response and a web
 * ReadableStream per call): 0.9-1.5 ms of CPU per call against 0.15-0.3 ms here (docs/scaling.md).
 * Failures are the SDK's own error classes, as with postChatStream:
 * @returns the response body parsed as JSON, typed by the caller (not validated)
 * @throws APIError (status, error body, headers) on a status ≥ 400
 * @throws APIConnectionTimeoutError when the headers or the body stalled past `timeoutMs`
 * @throws APIUserAbortError when `signal` aborted
 * @throws APIConnectionError when the server cannot be reached, or answered something that is not JSON
 */
export async function postJson<T>(req: JsonPostRequest): Promise<T> {
  return (await postJsonWithHeaders<T>(req)).json;
}

/**
 * postJson, with the response headers beside the parsed body: a non-streamed chat completion, whose
 * engine reports its own timings in headers (the simulator's `x-kvchat-engine-*`). Throws as postJson.
 */
export async function postJsonWithHeaders<T>(req: JsonPostRequest): Promise<{ json: T; headers: Headers }> {
  let response: Dispatcher.ResponseData;
  let text: string;
  try {
    response = await request(req.url, {
      method: 'POST',
      headers: requestHeaders('application/json', req.apiKey, req.headers),
      body: JSON.stringify(req.body),
      headersTimeout: req.timeoutMs,
      bodyTimeout: req.timeoutMs,
      ...(req.signal ? { signal: req.signal } : {}),
      dispatcher: req.dispatcher,
    });
    text = await response.body.text();
  } catch (e) {
    throw transportError(e, req.signal);
  }
  const json = parseJson(text);
  if (response.statusCode >= 400) throw statusError(response.statusCode, text, json, headersOf(response));
  if (json === undefined) {
    throw new APIConnectionError({
      cause: new Error(`${req.url} answered ${response.statusCode} without JSON`),
    });
  }
  return { json: json as T, headers: headersOf(response) };
}

/** The headers of an engine request: JSON body, `accept`, the bearer key, then the deployment's own. */
function requestHeaders(
  accept: string,
  apiKey: string,
  extra?: Record<string, string>,
): Record<string, string> {
  return { 'content-type': 'application/json', accept, authorization: `Bearer ${apiKey}`, ...extra };
}

/** `text` parsed as JSON, or undefined when it is not JSON. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The SDK's error for an answer with status ≥ 400: its JSON body when it has one, else its text. */
function statusError(status: number, text: string, json: unknown, headers: Headers): APIError {
  return APIError.generate(
    status,
    json as object | undefined,
    json === undefined ? text : undefined,
    headers,
  );
}

/**
 * The SDK's error for a request that got no answer: an abort of `signal`, a timeout (headers, or a body
 * that stalled), or a server that cannot be reached.
 */
function transportError(e: unknown, signal?: AbortSignal): Error {
  if (signal?.aborted) return new APIUserAbortError();
  const code = (e as { code?: string }).code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT')
    return new APIConnectionTimeoutError();
  return new APIConnectionError({ cause: e instanceof Error ? e : new Error(String(e)) });
}

/** undici's raw response headers as a fetch `Headers` (what the SDK's error classes carry). */
function headersOf(response: Dispatcher.ResponseData): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(response.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  return headers;
}

/** The chunk of one SSE event; @throws APIError for an `error` object or an `error` event. */
function chunkOf(event: EventSourceMessage, headers: Headers): ChatCompletionChunk {
  const data = JSON.parse(event.data) as ChatCompletionChunk & { error?: object };
  if (data.error !== undefined || event.event === 'error') {
    throw new APIError(undefined, data.error ?? data, undefined, headers);
  }
  return data;
}

const ignore = (): void => undefined;

/** A failure while reading the body, as the SDK reports it (see postChatStream). */
function readError(e: unknown, signal: AbortSignal): Error {
  if (e instanceof APIError) return e;
  if (signal.aborted) return new APIUserAbortError();
  return new Error(`terminated: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

/**
 * `forEachChunk`: the body read in flowing mode, each read fed to eventsource-parser and each event's
 * chunk handed to `onChunk` in the same call stack (one `data` event per read, no promise per chunk).
 */
function forEachChunkOf(
  body: Dispatcher.ResponseData['body'],
  headers: Headers,
  signal: AbortSignal,
  onChunk: (chunk: ChatCompletionChunk) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    /** An error of `onChunk` itself: passed on unchanged (an Error; anything else thrown is wrapped in one). */
    let consumerError: { error: Error } | undefined;
    const settle = (error?: { error: Error }): void => {
      if (settled) return;
      settled = true;
      body.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      release(body, !error);
      if (error) reject(error.error);
      else resolve();
    };
    const parser = createParser({
      onEvent: (event) => {
        if (settled) return;
        if (event.data.startsWith('[DONE]')) return settle();
        const chunk = chunkOf(event, headers);
        try {
          onChunk(chunk);
        } catch (e) {
          consumerError = { error: e instanceof Error ? e : new Error(String(e)) };
          throw e;
        }
      },
    });
    const decoder = new TextDecoder();
    const onData = (bytes: Buffer): void => {
      try {
        parser.feed(decoder.decode(bytes, { stream: true }));
      } catch (e) {
        settle(consumerError ?? { error: readError(e, signal) });
      }
    };
    const onEnd = (): void => settle();
    const onError = (e: unknown): void => settle({ error: readError(e, signal) });
    // A body destroyed before its end without an error (it should not happen with undici): a broken stream.
    const onClose = (): void =>
      settle({ error: readError(new Error('the body closed before its end'), signal) });
    body.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

async function* chunksOf(
  body: Dispatcher.ResponseData['body'],
  headers: Headers,
  signal: AbortSignal,
): AsyncGenerator<ChatCompletionChunk> {
  const ready: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => ready.push(event) });
  const decoder = new TextDecoder();
  let done = false;
  try {
    // destroyOnReturn: false, so leaving the loop at [DONE] does not destroy the body (release decides).
    for await (const bytes of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      parser.feed(decoder.decode(bytes, { stream: true }));
      for (const event of ready.splice(0)) {
        if (event.data.startsWith('[DONE]')) {
          done = true;
          return;
        }
        yield chunkOf(event, headers);
      }
    }
  } catch (e) {
    throw readError(e, signal);
  } finally {
    release(body, done);
  }
}

/**
 * How long a body may take to end after `[DONE]` before its connection is dropped, ms. vLLM (uvicorn) and
 * the simulator write `[DONE]` and the body's last chunk separately, so the end usually comes a read later.
 */
export const DRAIN_AFTER_DONE_MS = 1000;

/**
 * Lets go of a response body whose reader stopped. After `[DONE]` (`drain`) the rest of the body (its end)
 * is read and dropped, so undici puts the keep-alive connection back in its pool: destroying it there
 * closed the engine connection after nearly every streamed turn, and the next turn paid a new TCP
 * connection on both sides (docs/scaling.md, "Sixth pass"); a body that does not end within
 * DRAIN_AFTER_DONE_MS is destroyed. Otherwise (an error, an abort, a consumer that stopped early) the
 * body is destroyed at once, which ends the request; undici's own abort error is then nobody's concern.
 */
function release(body: Dispatcher.ResponseData['body'], drain: boolean): void {
  body.on('error', ignore);
  if (body.destroyed || body.readableEnded) return;
  if (!drain) {
    body.destroy();
    return;
  }
  const timer = setTimeout(() => body.destroy(), DRAIN_AFTER_DONE_MS);
  timer.unref();
  body.once('close', () => clearTimeout(timer));
  body.resume();
}
