import { blockHashChain, commonPrefixBlocks, extendBlockHashChain } from './block-hash';

const tokens = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

describe('blockHashChain', () => {
  it('should hash full blocks only, and equal prefixes to equal hashes', () => {
    const a = blockHashChain(tokens(50), 16);
    const b = blockHashChain([...tokens(40), 999, ...tokens(20, 41)], 16);

    expect(a).toHaveLength(3);
    expect(commonPrefixBlocks(a, b)).toBe(2);
  });

  it('should change every hash after the first differing block (the chain carries the prefix)', () => {
    const a = blockHashChain(tokens(64), 16);
    const changed = tokens(64);
    changed[3] = -1;
    const b = blockHashChain(changed, 16);

    expect(a.filter((h, i) => h === b[i])).toHaveLength(0);
  });

  it('should give different chains under different salts for the same tokens', () => {
    const a = blockHashChain(tokens(64), 16, 'tenant-a');
    const b = blockHashChain(tokens(64), 16, 'tenant-b');

    expect(commonPrefixBlocks(a, b)).toBe(0);
    expect(commonPrefixBlocks(a, blockHashChain(tokens(64), 16, 'tenant-a'))).toBe(4);
  });

  it('should keep the hashes it has always given (routers and stored chains of a running fleet compare them)', () => {
    // Five template placeholders, then 40 ids: two full blocks. Values from the first implementation.
    const ids = [-1, -1, -1, -1, -1, ...Array.from({ length: 40 }, (_, i) => (i * 7919) % 50000)];

    expect(blockHashChain(ids, 16, 'tenant-a')).toEqual(['NWTzIqUbxiRDe2z9EuQ6nN', 'muacawxj9GBp5ZT5-k_NbD']);
    expect(blockHashChain(Int32Array.from(ids), 16)).toEqual([
      '9X3E5DYiTQrmrjyYUKYLDg',
      'RGMH4g00voNy5A37MxoIQw',
    ]);
  });
});

describe('extendBlockHashChain', () => {
  it('should give the whole chain while hashing only the blocks after the kept ones', () => {
    const grown = [...tokens(100), ...tokens(70, 500)];
    const kept = blockHashChain(tokens(100), 16, 'salt').slice(0, 5);

    expect(extendBlockHashChain(kept, grown, 16, 'salt')).toEqual(blockHashChain(grown, 16, 'salt'));
    expect(extendBlockHashChain(kept, Int32Array.from(grown), 16, 'salt')).toEqual(
      blockHashChain(grown, 16, 'salt'),
    );
  });

  it('should trust the kept hashes (a wrong promise shows in every later hash) and cut them to the full blocks', () => {
    const kept = blockHashChain(tokens(64, 1000), 16);

    expect(extendBlockHashChain(kept, tokens(80), 16)[4]).not.toBe(blockHashChain(tokens(80), 16)[4]);
    expect(extendBlockHashChain(kept, tokens(40), 16)).toEqual(kept.slice(0, 2));
  });
});
