import { mergeFaults, resolveSimulatorOptions, SimulatorOptionsError } from './simulator.options';

describe('resolveSimulatorOptions', () => {
  it('should fill the documented defaults when nothing is given', () => {
    const sut = resolveSimulatorOptions();

    expect(sut).toMatchObject({
      model: 'kvchat-sim-llama-3.1-8b',
      maxModelLen: 32768,
      blockSize: 16,
      numGpuBlocks: 8192,
      enablePrefixCaching: true,
      embeddingDimension: 384,
      lmcache: { enabled: true, chunkSize: 256 },
      timing: { itlMs: 13, prefillMsPerToken: 0.051, timeScale: 1 },
      faults: { errorRate: 0, errorStatus: 500, cutStreamAfterTokens: null, stallMs: 0 },
    });
  });

  it('should merge nested groups when only some fields are given', () => {
    const sut = resolveSimulatorOptions({ timing: { timeScale: 0 }, lmcache: { chunkSize: 64 } });

    expect(sut.timing).toMatchObject({ timeScale: 0, itlMs: 13 });
    expect(sut.lmcache).toMatchObject({ chunkSize: 64, enabled: true });
  });

  it.each([
    [{ model: 'llama-3.1-8b' }, /model/],
    [{ numGpuBlocks: 10, maxModelLen: 1024 }, /numGpuBlocks/],
    [{ faults: { errorRate: 2 } }, /errorRate/],
    [{ timing: { itlMs: -1 } }, /timing\.itlMs/],
  ])('should name the option when %j is invalid', (input, pattern) => {
    expect(() => resolveSimulatorOptions(input)).toThrow(SimulatorOptionsError);
    expect(() => resolveSimulatorOptions(input)).toThrow(pattern);
  });
});

describe('mergeFaults', () => {
  it('should keep the other faults when one is changed', () => {
    const base = resolveSimulatorOptions().faults;

    expect(mergeFaults(base, { stallMs: 20 })).toEqual({ ...base, stallMs: 20 });
    expect(() => mergeFaults(base, { errorStatus: 200 })).toThrow(/errorStatus/);
  });
});
