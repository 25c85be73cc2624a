import { blockHashChain, commonPrefixBlocks } from './block-hash';

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
});
