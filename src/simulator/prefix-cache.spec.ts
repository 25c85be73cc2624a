import { computeBlockHashes, KvBlockPool } from './prefix-cache';

/** Distinct token ids [start, start + n). */
function tokens(n: number, start = 1): number[] {
  return Array.from({ length: n }, (_, i) => start + i);
}

/** Admits, prefills and finishes a request with no output, leaving its full blocks cached. */
function runToCompletion(sut: KvBlockPool, id: string, prompt: number[], salt?: string): number {
  const hashes = computeBlockHashes(prompt, sut.blockSize, salt);
  const allocation = sut.allocate(id, prompt, hashes, 1, salt);
  if (!allocation) throw new Error(`could not admit ${id}`);
  sut.markComputed(id, prompt.length);
  sut.free(id);
  return allocation.hitTokens;
}

function hitOf(sut: KvBlockPool, prompt: number[], salt?: string): number {
  return sut.peekHitTokens(computeBlockHashes(prompt, sut.blockSize, salt), prompt.length);
}

describe('computeBlockHashes', () => {
  it('should give the same hashes to the shared full blocks when two prompts share a prefix', () => {
    const a = computeBlockHashes([...tokens(32), 7, 7, 7, 7], 16);
    const b = computeBlockHashes([...tokens(32), 9, 9, 9, 9], 16);

    expect(a).toHaveLength(2);
    expect(b).toEqual(a);
  });

  it('should change every later hash when an early token differs', () => {
    const base = tokens(48);
    const changed = [...base];
    changed[3] = 999;

    const a = computeBlockHashes(base, 16);
    const b = computeBlockHashes(changed, 16);

    expect(b.every((h, i) => h !== a[i])).toBe(true);
  });

  it('should make the chains disjoint when the cache salts differ', () => {
    const prompt = tokens(64);

    const a = computeBlockHashes(prompt, 16, 'tenant-a');
    const b = computeBlockHashes(prompt, 16, 'tenant-b');
    const none = computeBlockHashes(prompt, 16);

    expect(new Set([...a, ...b, ...none]).size).toBe(12);
  });

  it('should not hash the partial last block when the prompt is not block aligned', () => {
    expect(computeBlockHashes(tokens(47), 16)).toHaveLength(2);
    expect(computeBlockHashes(tokens(15), 16)).toHaveLength(0);
  });

  it('should continue a chain when given the parent hash of the previous block', () => {
    const all = computeBlockHashes(tokens(48), 16, 'salt');
    const tail = computeBlockHashes(tokens(48).slice(16), 16, 'salt', all[0], 1);

    expect(tail).toEqual(all.slice(1));
  });
});

describe('KvBlockPool', () => {
  it('should recompute the whole last block when every prompt block is cached (max hit = prompt - 1)', () => {
    const sut = new KvBlockPool(64, 16, true);
    runToCompletion(sut, 'a', tokens(32));

    expect(hitOf(sut, tokens(32))).toBe(16);
    expect(hitOf(sut, [...tokens(32), 5])).toBe(32);
  });

  it('should hit only full blocks when the previous prompt ended in a partial block', () => {
    const sut = new KvBlockPool(64, 16, true);
    runToCompletion(sut, 'a', tokens(20));

    expect(hitOf(sut, [...tokens(20), ...tokens(20, 500)])).toBe(16);
  });

  it('should cache the blocks filled during decode when the request finishes', () => {
    const sut = new KvBlockPool(64, 4, true);
    const prompt = tokens(6);
    const output = [100, 101, 102, 103, 104];
    expect(sut.allocate('a', prompt, computeBlockHashes(prompt, 4), output.length)).not.toBeNull();
    sut.markComputed('a', prompt.length);
    for (const t of output) sut.appendToken('a', t);
    sut.free('a');

    // Computed tokens = prompt + output - 1 (the last sampled token is never fed back) = 10 -> 2 full blocks.
    const nextTurn = [...prompt, ...output, 200, 201, 202];
    expect(hitOf(sut, nextTurn)).toBe(8);
  });

  it('should report the GPU hit at admission when a later request shares the prefix', () => {
    const sut = new KvBlockPool(64, 16, true);
    runToCompletion(sut, 'a', tokens(40));

    const hit = runToCompletion(sut, 'b', [...tokens(40), ...tokens(10, 900)]);

    expect(hit).toBe(32);
  });

  it('should never hit when prefix caching is disabled', () => {
    const sut = new KvBlockPool(64, 16, false);
    runToCompletion(sut, 'a', tokens(64));

    expect(runToCompletion(sut, 'b', tokens(64))).toBe(0);
    expect(sut.stats().cachedBlocks).toBe(0);
  });

  it('should not share blocks when the cache salts differ', () => {
    const sut = new KvBlockPool(64, 16, true);
    runToCompletion(sut, 'a', tokens(64), 'tenant-a');

    expect(hitOf(sut, tokens(64), 'tenant-b')).toBe(0);
    expect(hitOf(sut, tokens(64))).toBe(0);
    expect(hitOf(sut, tokens(64), 'tenant-a')).toBe(48);
  });

  it('should evict the least recently freed blocks first and never the blocks of a running request', () => {
    const sut = new KvBlockPool(6, 4, true);
    const a = tokens(8, 1);
    const b = tokens(8, 100);
    runToCompletion(sut, 'a', a); // blocks 0,1 cached and free
    const bHashes = computeBlockHashes(b, 4);
    expect(sut.allocate('b', b, bHashes, 1)).not.toBeNull(); // blocks 2,3 pinned
    sut.markComputed('b', b.length);

    // Free queue: never-used blocks 4,5 first, then A's blocks: C takes 4,5 without evicting.
    const c = sut.allocate('c', tokens(8, 200), computeBlockHashes(tokens(8, 200), 4), 1);
    expect(c?.evictedBlocks).toBe(0);
    expect(hitOf(sut, [...a, 0])).toBe(8);

    // D needs 2 more blocks: only A's cached free blocks are left, B's are pinned.
    const d = sut.allocate('d', tokens(8, 300), computeBlockHashes(tokens(8, 300), 4), 1);
    expect(d?.evictedBlocks).toBe(2);
    expect(hitOf(sut, [...a, 0])).toBe(0);
    expect(hitOf(sut, [...b, 0])).toBe(8);

    // Nothing is free and B, C, D are running: admission waits instead of evicting pinned blocks.
    expect(sut.allocate('e', tokens(8, 400), computeBlockHashes(tokens(8, 400), 4), 1)).toBeNull();
    expect(sut.stats()).toMatchObject({ usedBlocks: 6, freeBlocks: 0, usage: 1 });
  });

  it("should evict a finished request's last block first because freed blocks return in reverse order", () => {
    const sut = new KvBlockPool(3, 4, true);
    const a = tokens(12);
    runToCompletion(sut, 'a', a);

    sut.allocate('x', tokens(4, 100), computeBlockHashes(tokens(4, 100), 4), 1);

    expect(hitOf(sut, [...a, 0])).toBe(8);
  });

  it('should refuse admission when the decode reservation does not fit', () => {
    const sut = new KvBlockPool(4, 4, true);

    // Prompt 4 tokens (1 block) + 13 outputs -> 16 computed tokens -> 4 blocks: fits exactly.
    expect(sut.allocate('a', tokens(4), computeBlockHashes(tokens(4), 4), 13)).not.toBeNull();
    expect(sut.stats().reservedBlocks).toBe(3);
    expect(sut.allocate('b', tokens(4, 50), computeBlockHashes(tokens(4, 50), 4), 1)).toBeNull();

    sut.free('a');
    expect(sut.stats()).toMatchObject({ reservedBlocks: 0, freeBlocks: 4 });
  });

  it('should forget every cached block when reset', () => {
    const sut = new KvBlockPool(64, 16, true);
    runToCompletion(sut, 'a', tokens(64));

    sut.reset();

    expect(hitOf(sut, tokens(64))).toBe(0);
    expect(sut.stats().cachedBlocks).toBe(0);
  });
});
