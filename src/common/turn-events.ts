import { EventEmitter, on } from 'node:events';

/** The payload types of a turn's progress events (a conversation turn, a stateless chat completion). */
export interface TurnProgressPayloads {
  route: unknown;
  citations: unknown;
  cache: unknown;
  usage: unknown;
  /**
   * Pieces of an answer besides its text (`token`): tool-call fragments, further choices, logprobs
   * (the OpenAI-compatible endpoint); `never` for a conversation turn.
   */
  choice: unknown;
}

/** The payload types of a turn's events: its progress and its result. */
export interface TurnEventPayloads extends TurnProgressPayloads {
  done: unknown;
}

/** The events a producer emits while it runs (`done` and `error` come from how it ends). */
export type TurnProgressEvent<P extends TurnProgressPayloads> =
  | { type: 'route'; route: P['route'] }
  | { type: 'citations'; citations: P['citations'] }
  | { type: 'cache'; cache: P['cache'] }
  | { type: 'token'; delta: string }
  // Only streams with pieces besides text have `choice` events (a turn's `choice` is never).
  | ([P['choice']] extends [never] ? never : { type: 'choice'; choice: P['choice'] })
  | { type: 'usage'; usage: P['usage'] };

/**
 * One event of a turn's stream, in the order a turn produces them:
 * `route` (the agent chosen; conversation turns only), `citations` (the passages an agent retrieved and
 * put in the prompt, before any token; only agents that retrieve), `cache` (what the response cache did: before the
 * tokens, hit or miss), `token` (answer deltas, live from the engine or replayed from the cache),
 * `usage` (the engine's usage; zero on a response-cache hit), then exactly one of `done` (the result)
 * or `error` (the turn failed; nothing partial was stored as an answer).
 */
export type TurnEvent<P extends TurnEventPayloads> =
  | TurnProgressEvent<P>
  | { type: 'done'; result: P['done'] }
  | { type: 'error'; error: unknown };

/** Where a turn's producer sends its progress events, and the turn's cancellation. */
export interface TurnSink<P extends TurnProgressPayloads> {
  /** Fires when the turn is cancelled (the client went away); producers stop and throw RequestAborted. */
  readonly signal: AbortSignal;
  emit(event: TurnProgressEvent<P>): void;
}

/**
 * Runs `produce` and yields what it emits, in order, then `done` with its result or `error` with
 * what it threw. The producer starts on the first `next()`; a consumer that stops iterating does
 * not stop it (abort `signal` for that). Events are queued by Node's `events.on`.
 */
export async function* turnEventStream<P extends TurnEventPayloads>(
  signal: AbortSignal,
  produce: (sink: TurnSink<P>) => Promise<P['done']>,
): AsyncGenerator<TurnEvent<P>, void, undefined> {
  const emitter = new EventEmitter();
  const events = on(emitter, 'event', { close: ['end'] }) as AsyncIterableIterator<[TurnEvent<P>]>;
  const emit = (event: TurnEvent<P>): boolean => emitter.emit('event', event);
  void produce({ signal, emit }).then(
    (result) => {
      emit({ type: 'done', result });
      emitter.emit('end');
    },
    (error: unknown) => {
      emit({ type: 'error', error });
      emitter.emit('end');
    },
  );
  for await (const [event] of events) yield event;
}

/**
 * Consumes a turn's stream to its end: the `done` result. @throws the `error` event's error
 * @param onEvent sees every event before `done`/`error` (e.g. to write tokens out)
 */
export async function turnResult<E extends TurnEvent<TurnEventPayloads>>(
  events: AsyncIterable<E>,
  onEvent?: (event: Exclude<E, { type: 'done' } | { type: 'error' }>) => void,
): Promise<Extract<E, { type: 'done' }>['result']> {
  for await (const event of events) {
    if (event.type === 'done') return (event as Extract<E, { type: 'done' }>).result;
    if (event.type === 'error') throw (event as Extract<E, { type: 'error' }>).error;
    onEvent?.(event as Exclude<E, { type: 'done' } | { type: 'error' }>);
  }
  throw new Error('the turn stream ended without done or error');
}

/**
 * Runs `produce` and hands each event it emits to `onEvent` at once, in order, then resolves with its
 * result: what `turnResult(turnEventStream(signal, produce), onEvent)` gives, without the queue and the
 * two async iterators each event goes through there (a request that streams nothing, such as a
 * non-streamed chat completion, drops its token events here at the cost of a function call).
 * Use it when the consumer is one callback; `turnEventStream` when the events are read as a stream.
 * @param onEvent called synchronously from `emit`; when it throws, the promise rejects with that error
 *   at once and later events are not passed on (the producer runs on, as when a consumer of
 *   `turnEventStream` stops iterating; abort `signal` to stop it)
 * @throws what `produce` throws
 */
export function runTurn<P extends TurnEventPayloads>(
  signal: AbortSignal,
  produce: (sink: TurnSink<P>) => Promise<P['done']>,
  onEvent?: (event: TurnProgressEvent<P>) => void,
): Promise<P['done']> {
  if (!onEvent) return produce({ signal, emit: () => undefined });
  let failed = false;
  let fail!: (error: unknown) => void;
  const consumerFailed = new Promise<never>((_resolve, reject) => (fail = reject));
  const produced = produce({
    signal,
    emit: (event) => {
      if (failed) return;
      try {
        onEvent(event);
      } catch (e) {
        failed = true;
        fail(e);
      }
    },
  });
  // Once the consumer failed, what the producer ends with is nobody's (it must not go unhandled).
  produced.catch(() => undefined);
  return Promise.race([produced, consumerFailed]);
}

/** A signal that never fires (a turn nobody can cancel: jobs, CLIs, tests). */
export const NEVER_ABORTED: AbortSignal = new AbortController().signal;
