import { reciprocalRankFusion } from './rrf';

describe('reciprocalRankFusion', () => {
  it('should score each id by the sum of 1 / (k + rank) over the rankings that hold it', () => {
    const sut = reciprocalRankFusion(
      [
        ['a', 'b', 'c'],
        ['c', 'a'],
      ],
      60,
    );
    expect(sut.map((f) => f.id)).toEqual(['a', 'c', 'b']);
    expect(sut[0]).toEqual({ id: 'a', score: 1 / 61 + 1 / 62, ranks: [1, 2] });
    expect(sut[1]).toEqual({ id: 'c', score: 1 / 63 + 1 / 61, ranks: [3, 1] });
    expect(sut[2]).toEqual({ id: 'b', score: 1 / 62, ranks: [2, undefined] });
  });

  it('should put an item both methods found above one that a single method ranked first', () => {
    const sut = reciprocalRankFusion([
      ['only-vector', 'both'],
      ['only-text', 'both'],
    ]);
    expect(sut[0].id).toBe('both');
  });

  it('should let a small k favour a first place and a large k favour agreement', () => {
    const rankings = [
      ['x', 'a', 'b', 'y'],
      ['w', 'c', 'd', 'y'],
    ];
    expect(reciprocalRankFusion(rankings, 1)[0].id).toBe('x');
    expect(reciprocalRankFusion(rankings, 1000)[0].id).toBe('y');
  });

  it('should ignore repeated ids within a ranking and break ties by first appearance', () => {
    const sut = reciprocalRankFusion([
      ['a', 'a', 'b'],
      ['b', 'a'],
    ]);
    expect(sut.find((f) => f.id === 'b')!.ranks).toEqual([2, 1]);
    expect(sut.map((f) => f.id)).toEqual(['a', 'b']);
    expect(reciprocalRankFusion([['p'], ['q']]).map((f) => f.id)).toEqual(['p', 'q']);
  });

  it('should return nothing for empty rankings and refuse a negative k', () => {
    expect(reciprocalRankFusion([[], []])).toEqual([]);
    expect(() => reciprocalRankFusion([['a']], -1)).toThrow(RangeError);
  });
});
