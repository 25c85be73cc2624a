import {
  NEVER_ABORTED,
  runTurn,
  turnEventStream,
  turnResult,
  type TurnEventPayloads,
  type TurnProgressEvent,
  type TurnSink,
} from './turn-events';

type Payloads = TurnEventPayloads & { done: string; choice: never };

/** A producer that emits a cache event and two tokens, yielding to the loop between them, then answers. */
const produce = async (sink: TurnSink<Payloads>): Promise<string> => {
  sink.emit({ type: 'cache', cache: { hit: false } });
  await Promise.resolve();
  sink.emit({ type: 'token', delta: 'Hello' });
  await new Promise((resolve) => setImmediate(resolve));
  sink.emit({ type: 'token', delta: ' world' });
  return 'Hello world';
};

describe('runTurn', () => {
  it('should hand every progress event to the consumer in order and resolve with the result, as turnResult does', async () => {
    const seen: TurnProgressEvent<Payloads>[] = [];
    const viaStream: TurnProgressEvent<Payloads>[] = [];

    const sut = await runTurn<Payloads>(NEVER_ABORTED, produce, (event) => seen.push(event));
    const streamed = await turnResult(turnEventStream<Payloads>(NEVER_ABORTED, produce), (event) =>
      viaStream.push(event),
    );

    expect(sut).toBe('Hello world');
    expect(sut).toBe(streamed);
    expect(seen).toEqual(viaStream);
    expect(seen.map((e) => e.type)).toEqual(['cache', 'token', 'token']);
  });

  it('should resolve with the result when nobody consumes the events', async () => {
    await expect(runTurn<Payloads>(NEVER_ABORTED, produce)).resolves.toBe('Hello world');
  });

  it('should reject with what the producer throws', async () => {
    const failing = async (sink: TurnSink<Payloads>): Promise<string> => {
      sink.emit({ type: 'token', delta: 'partial' });
      await Promise.resolve();
      throw new Error('engine cut');
    };
    const seen: string[] = [];

    await expect(runTurn<Payloads>(NEVER_ABORTED, failing, (event) => seen.push(event.type))).rejects.toThrow(
      'engine cut',
    );
    expect(seen).toEqual(['token']);
  });

  it('should reject at once with what the consumer throws and pass it no later event', async () => {
    let finish!: () => void;
    const slow = async (sink: TurnSink<Payloads>): Promise<string> => {
      sink.emit({ type: 'token', delta: 'first' });
      await new Promise<void>((resolve) => (finish = resolve));
      sink.emit({ type: 'token', delta: 'second' });
      return 'done';
    };
    const seen: string[] = [];

    const sut = runTurn<Payloads>(NEVER_ABORTED, slow, (event) => {
      seen.push(event.type === 'token' ? event.delta : event.type);
      throw new Error('socket closed');
    });

    // Rejects while the producer still waits: the consumer's failure does not wait for the answer.
    await expect(sut).rejects.toThrow('socket closed');
    finish();
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual(['first']);
  });
});
