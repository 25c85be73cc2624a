import { computeChunkHashes, LmcacheTiers, planLoad, type RemoteChunkStore } from './lmcache';

function tokens(n: number, start = 1): number[] {
  return Array.from({ length: n }, (_, i) => start + i);
}

/** An in-memory stand-in for the Redis remote tier. */
class MemoryRemoteStore implements RemoteChunkStore {
  readonly keys = new Set<string>();
  has(hashes: readonly string[]): Promise<boolean[]> {
    return Promise.resolve(hashes.map((h) => this.keys.has(h)));
  }
  put(chunks: readonly { hash: string; tokens: number }[]): Promise<number> {
    const fresh = chunks.filter((c) => !this.keys.has(c.hash));
    fresh.forEach((c) => this.keys.add(c.hash));
    return Promise.resolve(fresh.length);
  }
  clear(): Promise<number> {
    const n = this.keys.size;
    this.keys.clear();
    return Promise.resolve(n);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

describe('computeChunkHashes', () => {
  it('should hash full chunks only, chained, with the salt in the first', () => {
    const plain = computeChunkHashes(tokens(600), 256);
    const salted = computeChunkHashes(tokens(600), 256, 'tenant');

    expect(plain).toHaveLength(2);
    expect(salted).toHaveLength(2);
    expect(salted.some((h) => plain.includes(h))).toBe(false);
    expect(computeChunkHashes([...tokens(512), 1, 2, 3], 256)).toEqual(plain);
  });
});

describe('LmcacheTiers', () => {
  it('should find the stored full chunks of a prompt when it is looked up again', async () => {
    const sut = new LmcacheTiers(64, 10_000, null);
    await sut.store(tokens(200));

    const lookup = await sut.lookup([...tokens(200), ...tokens(100, 5000)]);

    expect(lookup.hitTokens).toBe(192);
    expect(lookup.chunks.map((c) => c.tier)).toEqual(['cpu', 'cpu', 'cpu']);
  });

  it('should stop the hit at the first chunk evicted by capacity', async () => {
    const sut = new LmcacheTiers(64, 128, null); // two chunks
    const stored = await sut.store(tokens(192)); // three chunks: the first is evicted

    const lookup = await sut.lookup(tokens(192));

    expect(stored.storedTokens).toBe(192);
    expect(lookup.hitTokens).toBe(0);
    expect(sut.stats()).toMatchObject({ cpuChunks: 2, cpuTokens: 128, cpuEvictions: 1 });
  });

  it('should keep the recently hit chunk when capacity forces an eviction', async () => {
    const sut = new LmcacheTiers(64, 128, null);
    const a = tokens(64, 1);
    const b = tokens(64, 1000);
    await sut.store(a);
    await sut.store(b);

    await sut.lookup(a); // refreshes A
    await sut.store(tokens(64, 2000));

    expect((await sut.lookup(a)).hitTokens).toBe(64);
    expect((await sut.lookup(b)).hitTokens).toBe(0);
  });

  it('should not store anything when the CPU capacity is below one chunk', async () => {
    const sut = new LmcacheTiers(256, 100, null);

    const stored = await sut.store(tokens(512));

    expect(stored.storedTokens).toBe(0);
    expect((await sut.lookup(tokens(512))).hitTokens).toBe(0);
  });

  it('should find chunks in the shared remote tier when another replica stored them', async () => {
    const remote = new MemoryRemoteStore();
    const replicaA = new LmcacheTiers(64, 10_000, remote);
    const sut = new LmcacheTiers(64, 10_000, remote);
    await replicaA.store(tokens(256));

    const lookup = await sut.lookup(tokens(256));
    sut.promote(lookup, 0, 255);

    expect(lookup.hitTokens).toBe(256);
    expect(lookup.chunks.every((c) => c.tier === 'remote')).toBe(true);
    expect((await sut.lookup(tokens(256))).chunks.map((c) => c.tier)).toEqual(['cpu', 'cpu', 'cpu', 'cpu']);
  });

  it('should keep locally only the remote chunks that were loaded when the GPU already held the first ones', async () => {
    const remote = new MemoryRemoteStore();
    await new LmcacheTiers(64, 10_000, remote).store(tokens(256));
    const sut = new LmcacheTiers(64, 10_000, remote);

    sut.promote(await sut.lookup(tokens(256)), 128, 255);

    const tiers = (await sut.lookup(tokens(256))).chunks.map((c) => c.tier);
    expect(tiers).toEqual(['remote', 'remote', 'cpu', 'cpu']);
  });

  it('should empty both tiers when cleared', async () => {
    const remote = new MemoryRemoteStore();
    const sut = new LmcacheTiers(64, 10_000, remote);
    await sut.store(tokens(128));

    await sut.clear();

    expect((await sut.lookup(tokens(128))).hitTokens).toBe(0);
    expect(remote.keys.size).toBe(0);
  });
});

describe('planLoad', () => {
  it('should count only the tokens after the GPU hit and before the limit, by tier', () => {
    const lookup = {
      hitTokens: 192,
      remoteQueried: true,
      chunks: [
        { tier: 'cpu' as const, start: 0, end: 64, hash: 'a' },
        { tier: 'remote' as const, start: 64, end: 128, hash: 'b' },
        { tier: 'cpu' as const, start: 128, end: 192, hash: 'c' },
      ],
    };

    expect(planLoad(lookup, 48, 191)).toEqual({ cpuTokens: 16 + 63, remoteTokens: 64 });
    expect(planLoad(lookup, 192, 300)).toEqual({ cpuTokens: 0, remoteTokens: 0 });
  });
});
