import { parsePrometheusText } from '../../src/inference/prometheus-text';
import { startEngineSimulator, type RunningSimulator } from '../../src/simulator/simulator.server';
import { api, startTestApp, type TestApp } from '../factories/test-app';

/**
 * Admission control (issue 14, item 3): one turn in flight and one queued at most; the engine holds
 * turns (the simulator stalls before the first token) until the test's client lets them go.
 */
describe('admission control and load shedding (e2e)', () => {
  let sim: RunningSimulator;
  let sut: TestApp;

  beforeAll(async () => {
    sim = await startEngineSimulator({ timing: { timeScale: 0 } });
    sut = await startTestApp({
      INFERENCE_ENDPOINTS: sim.baseURL,
      RESPONSE_CACHE_ENABLED: 'false',
      TURNS_MAX_IN_FLIGHT: '1',
      TURNS_MAX_QUEUED: '1',
      TURN_QUEUE_TIMEOUT_MS: '60000',
      TURN_SHED_RETRY_AFTER_SECONDS: '2',
    });
  });

  afterAll(async () => {
    await sut?.close();
    await sim?.close();
  });

  afterEach(() => sim.engine.setFaults({ stallMs: 0 }));

  const metric = async (name: string, labels: Record<string, string> = {}): Promise<number> => {
    const text = await (await fetch(`${sut.url}/metrics`)).text();
    const sample = parsePrometheusText(text).find(
      (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    );
    return sample?.value ?? 0;
  };
  /** Polls `metric` until it equals `value` (bounded), the gate between the clients' steps. */
  const metricBecomes = async (
    name: string,
    value: number,
    labels: Record<string, string> = {},
  ): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while ((await metric(name, labels)) !== value) {
      if (Date.now() > deadline) throw new Error(`${name} did not become ${value}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const conversation = async (): Promise<string> =>
    (await api(`${sut.url}/v1/conversations`, { key: sut.keyA, body: {} })).body.id as string;
  const turn = (id: string, content: string, signal?: AbortSignal) =>
    api(`${sut.url}/v1/conversations/${id}/turns`, { key: sut.keyA, body: { content }, signal });

  it('should shed a turn beyond the in-flight and queue bounds with a fast 503, and drop a queued turn whose client left', async () => {
    sim.engine.setFaults({ stallMs: 60_000 });
    const [a, b, c] = [await conversation(), await conversation(), await conversation()];
    const clientA = new AbortController();
    const clientB = new AbortController();
    const turnA = turn(a, 'first, held by the engine', clientA.signal).catch((e: Error) => e);
    await metricBecomes('kvchat_turns_in_flight', 1);
    const turnB = turn(b, 'second, waits in the queue', clientB.signal).catch((e: Error) => e);
    await metricBecomes('kvchat_turns_queued', 1);

    const started = performance.now();
    const shed = await turn(c, 'third, no room');
    const shedMs = performance.now() - started;

    expect(shed.status).toBe(503);
    expect(shed.headers.get('content-type')).toContain('application/problem+json');
    expect(shed.headers.get('retry-after')).toBe('2');
    expect(shed.body).toMatchObject({ code: 'Overloaded', status: 503, reason: 'queue_full' });
    expect(shedMs).toBeLessThan(1000);
    expect(await metric('kvchat_turns_shed_total', { reason: 'queue_full' })).toBe(1);

    clientB.abort();
    await metricBecomes('kvchat_turns_abandoned_in_queue_total', 1);
    expect(await metric('kvchat_turns_queued')).toBe(0);
    clientA.abort();
    await metricBecomes('kvchat_turns_in_flight', 0);
    await Promise.all([turnA, turnB]);

    // B never started: not even its user message was stored. C was refused before any work.
    for (const id of [b, c]) {
      const messages = await api(`${sut.url}/v1/conversations/${id}/messages`, { key: sut.keyA });
      expect(messages.body.data).toEqual([]);
    }
    sim.engine.setFaults({ stallMs: 0 });
    const after = await turn(c, 'room again');
    expect(after.status).toBe(201);
  });

  it('should hold the stateless chat completions to the same bound', async () => {
    sim.engine.setFaults({ stallMs: 60_000 });
    const model = ((await api(`${sut.url}/v1/models`, { key: sut.keyA })).body.data as { id: string }[])[0]
      .id;
    const chat = (signal?: AbortSignal) =>
      api(`${sut.url}/v1/chat/completions`, {
        key: sut.keyA,
        body: { model, messages: [{ role: 'user', content: 'hello' }] },
        signal,
      });
    const holders = [new AbortController(), new AbortController()];
    const held = holders.map((h) => chat(h.signal).catch((e: Error) => e));
    await metricBecomes('kvchat_turns_queued', 1);

    const shed = await chat();

    expect(shed.status).toBe(503);
    expect(shed.body.code).toBe('Overloaded');
    for (const h of holders) h.abort();
    await Promise.all(held);
    await metricBecomes('kvchat_turns_in_flight', 0);
  });
});
