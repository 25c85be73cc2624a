import type { DraftChunk } from './chunker';
import { planReingestion, type StoredChunk } from './reingestion';

const draft = (hash: string, ordinal = 0): DraftChunk => ({
  ordinal,
  headingPath: [],
  heading: '',
  start: 0,
  end: 1,
  text: hash,
  tokenCount: 1,
  embeddingText: hash,
  contentHash: hash,
});
const stored = (id: string, hash: string, hasEmbedding = true): StoredChunk => ({
  id,
  contentHash: hash,
  hasEmbedding,
});

describe('planReingestion', () => {
  it('should keep every chunk and embed nothing when the content is unchanged', () => {
    const sut = planReingestion([stored('1', 'a'), stored('2', 'b')], [draft('a', 0), draft('b', 1)]);
    expect(sut.keep.map((k) => k.id)).toEqual(['1', '2']);
    expect(sut.insert).toEqual([]);
    expect(sut.remove).toEqual([]);
    expect(sut.toEmbed).toEqual([]);
  });

  it('should embed only the changed chunk and remove the one it replaces', () => {
    const sut = planReingestion(
      [stored('1', 'a'), stored('2', 'b'), stored('3', 'c')],
      [draft('a', 0), draft('B', 1), draft('c', 2)],
    );
    expect(sut.keep.map((k) => [k.id, k.draft.ordinal])).toEqual([
      ['1', 0],
      ['3', 2],
    ]);
    expect(sut.insert.map((d) => d.contentHash)).toEqual(['B']);
    expect(sut.remove).toEqual(['2']);
    expect(sut.toEmbed.map((d) => d.contentHash)).toEqual(['B']);
  });

  it('should follow moved chunks, and remove everything when the document becomes something else', () => {
    const moved = planReingestion([stored('1', 'a'), stored('2', 'b')], [draft('b', 0), draft('a', 1)]);
    expect(moved.keep.map((k) => [k.id, k.draft.ordinal])).toEqual([
      ['2', 0],
      ['1', 1],
    ]);
    expect(moved.toEmbed).toEqual([]);
    const replaced = planReingestion([stored('1', 'a')], [draft('x'), draft('y')]);
    expect(replaced.remove).toEqual(['1']);
    expect(replaced.toEmbed.map((d) => d.contentHash)).toEqual(['x', 'y']);
  });

  it('should embed a repeated new chunk once and copy a stored vector to an extra copy of a chunk', () => {
    const repeated = planReingestion([], [draft('n', 0), draft('n', 1)]);
    expect(repeated.insert).toHaveLength(2);
    expect(repeated.toEmbed).toHaveLength(1);
    const copied = planReingestion([stored('1', 'a')], [draft('a', 0), draft('a', 1)]);
    expect(copied.keep.map((k) => k.id)).toEqual(['1']);
    expect(copied.insert).toHaveLength(1);
    expect(copied.embeddingSources.get('a')).toBe('1');
    expect(copied.toEmbed).toEqual([]);
  });

  it('should re-embed kept chunks whose vector the current model lacks (a model change)', () => {
    const sut = planReingestion(
      [stored('1', 'a', false), stored('2', 'b', true)],
      [draft('a', 0), draft('b', 1)],
    );
    expect(sut.keep).toHaveLength(2);
    expect(sut.toEmbed.map((d) => d.contentHash)).toEqual(['a']);
  });
});
