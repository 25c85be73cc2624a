import { DEFAULT_SIMULATOR_TIMING, type SimulatorTiming } from './simulator.options';
import { AbortedError, decodeMs, PrefillLane, prefillCost, scaled, sleepMs } from './timing';

const timing: SimulatorTiming = {
  overheadMs: 5,
  prefillMsPerToken: 0.05,
  itlMs: 13,
  cpuLoadMsPerToken: 0.02,
  remoteLoadMsPerToken: 0.04,
  timeScale: 0.5,
};

describe('prefillCost', () => {
  it('should add overhead, computed tokens and tokens loaded from each tier at their own cost', () => {
    const sut = prefillCost({ uncachedTokens: 1000, cpuTokens: 2000, remoteTokens: 500 }, timing);

    expect(sut.computeMs).toBeCloseTo(50, 10);
    expect(sut.cpuLoadMs).toBeCloseTo(40, 10);
    expect(sut.remoteLoadMs).toBeCloseTo(20, 10);
    expect(sut.totalMs).toBeCloseTo(5 + 50 + 40 + 20, 10);
  });

  it('should cost only the overhead and one recomputed block when the prompt is cached on the GPU', () => {
    expect(prefillCost({ uncachedTokens: 16, cpuTokens: 0, remoteTokens: 0 }, timing).totalMs).toBeCloseTo(
      5.8,
      10,
    );
  });

  it('should make a 10,000-token miss cost about 0.5 s with the calibrated defaults', () => {
    const sut = prefillCost(
      { uncachedTokens: 10_000, cpuTokens: 0, remoteTokens: 0 },
      DEFAULT_SIMULATOR_TIMING,
    );
    const cpuHit = prefillCost(
      { uncachedTokens: 16, cpuTokens: 9_984, remoteTokens: 0 },
      DEFAULT_SIMULATOR_TIMING,
    );

    expect(sut.totalMs).toBeCloseTo(515, 0);
    expect(cpuHit.totalMs).toBeLessThan(sut.totalMs / 2);
  });
});

describe('decodeMs and scaled', () => {
  it('should space n tokens by n - 1 inter-token latencies after the first', () => {
    expect(decodeMs(1, timing)).toBe(0);
    expect(decodeMs(11, timing)).toBe(130);
    expect(scaled(130, timing)).toBe(65);
  });
});

describe('PrefillLane', () => {
  it('should serialize prefills so that a second booking starts when the first ends', () => {
    let now = 1000;
    const sut = new PrefillLane(() => now);

    const a = sut.book(100);
    now = 1010;
    const b = sut.book(50);
    now = 2000;
    const c = sut.book(10);

    expect(a).toEqual({ startAt: 1000, endAt: 1100 });
    expect(b).toEqual({ startAt: 1100, endAt: 1150 });
    expect(c).toEqual({ startAt: 2000, endAt: 2010 });
  });
});

describe('sleepMs', () => {
  it('should reject with AbortedError when the signal aborts during the sleep', async () => {
    const controller = new AbortController();
    const sleeping = sleepMs(10_000, controller.signal);

    controller.abort();

    await expect(sleeping).rejects.toBeInstanceOf(AbortedError);
  });
});
