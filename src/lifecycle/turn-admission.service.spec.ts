import { AdmissionConfig } from '../config/admission.config';
import { Overloaded } from './lifecycle.errors';
import { type Admission, TurnAdmission } from './turn-admission.service';

function build(limits: Partial<AdmissionConfig>): { sut: TurnAdmission } {
  return { sut: new TurnAdmission(Object.assign(new AdmissionConfig(), limits)) };
}

const admitted = (a: Admission): (() => void) => {
  if (!a.admitted) throw new Error('expected a slot');
  return a.release;
};

describe('TurnAdmission', () => {
  // Fake timers throughout: no queue timeout of a test's leftover waiter fires after the test.
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => {
    jest.clearAllTimers();
    jest.useRealTimers();
  });

  it('should start turns up to the in-flight bound and queue the next ones in arrival order', async () => {
    const { sut } = build({ TURNS_MAX_IN_FLIGHT: 2, TURNS_MAX_QUEUED: 2 });
    const signal = new AbortController().signal;
    const first = admitted(await sut.admit(signal));
    admitted(await sut.admit(signal));
    const order: string[] = [];
    const third = sut.admit(signal).then((a) => (order.push('third'), a));
    const fourth = sut.admit(signal).then((a) => (order.push('fourth'), a));

    expect(sut.inFlight).toBe(2);
    expect(sut.queued).toBe(2);
    first();
    admitted(await third);
    expect(order).toEqual(['third']);
    expect(sut.queued).toBe(1);
    void fourth;
  });

  it('should refuse a turn with Overloaded when slots and queue are full', async () => {
    const { sut } = build({
      TURNS_MAX_IN_FLIGHT: 1,
      TURNS_MAX_QUEUED: 1,
      TURN_SHED_RETRY_AFTER_SECONDS: 3,
    });
    const signal = new AbortController().signal;
    admitted(await sut.admit(signal));
    void sut.admit(signal);

    const refused = sut.admit(signal);

    await expect(refused).rejects.toBeInstanceOf(Overloaded);
    await expect(refused).rejects.toMatchObject({
      extensions: { reason: 'queue_full', retryAfterSeconds: 3 },
    });
    expect(sut.shedTotal).toEqual({ queue_full: 1, queue_timeout: 0 });
  });

  it('should shed a queued turn that waited past TURN_QUEUE_TIMEOUT_MS and free its queue place', async () => {
    const { sut } = build({ TURNS_MAX_IN_FLIGHT: 1, TURNS_MAX_QUEUED: 1, TURN_QUEUE_TIMEOUT_MS: 500 });
    const signal = new AbortController().signal;
    const running = admitted(await sut.admit(signal));
    const waiting = sut.admit(signal);

    jest.advanceTimersByTime(500);

    await expect(waiting).rejects.toMatchObject({ extensions: { reason: 'queue_timeout' } });
    expect(sut.queued).toBe(0);
    running();
    admitted(await sut.admit(signal));
  });

  it('should never start a queued turn whose client went away', async () => {
    const { sut } = build({ TURNS_MAX_IN_FLIGHT: 1, TURNS_MAX_QUEUED: 4 });
    const running = admitted(await sut.admit(new AbortController().signal));
    const client = new AbortController();
    const waiting = sut.admit(client.signal);
    const next = sut.admit(new AbortController().signal);

    client.abort();

    expect(await waiting).toEqual({ admitted: false });
    expect(sut.abandonedInQueueTotal).toBe(1);
    expect(sut.queued).toBe(1);
    running();
    const release = admitted(await next);
    expect(sut.inFlight).toBe(1);
    release();
  });
});
