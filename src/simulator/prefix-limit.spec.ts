import { PrefixLimitTracker } from './prefix-limit';

const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

describe('PrefixLimitTracker', () => {
  it('should count the tokens a prompt shares with the previous prompt and answer, past the last full block', () => {
    const sut = new PrefixLimitTracker(4);
    const prompt1 = range(1, 10);
    const answer1 = range(100, 5);
    sut.remember([...prompt1, ...answer1]);
    // The next turn repeats prompt 1 and answer 1, then adds 3 new tokens.
    const prompt2 = [...prompt1, ...answer1, 7, 8, 9];

    expect(sut.sharedPrefix(prompt2)).toBe(15);
  });

  it('should stop where the layout changed the prompt (a clock in the first block)', () => {
    const sut = new PrefixLimitTracker(4);
    sut.remember([...range(1, 12), ...range(100, 4)]);

    expect(sut.sharedPrefix([0, ...range(2, 11), 5])).toBe(0);
    expect(sut.sharedPrefix([...range(1, 6), 99, ...range(8, 6)])).toBe(6);
  });

  it('should not match another tenant’s sequence (the cache salt is part of the first block)', () => {
    const sut = new PrefixLimitTracker(4);
    sut.remember(range(1, 16), 'tenant-a');

    expect(sut.sharedPrefix(range(1, 16), 'tenant-b')).toBe(0);
    expect(sut.sharedPrefix(range(1, 16), 'tenant-a')).toBe(16);
  });

  it('should forget the oldest sequences beyond its bound', () => {
    const sut = new PrefixLimitTracker(4, 1);
    sut.remember(range(1, 8));
    sut.remember(range(50, 8));

    expect(sut.sharedPrefix(range(1, 8))).toBe(0);
    expect(sut.sharedPrefix(range(50, 8))).toBe(8);
  });
});
