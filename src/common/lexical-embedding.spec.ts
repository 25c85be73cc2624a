import { cosineSimilarity, lexicalEmbedding, stemWord } from './lexical-embedding';

const DIM = 384;

function cos(a: string, b: string): number {
  return cosineSimilarity(lexicalEmbedding(a, DIM), lexicalEmbedding(b, DIM));
}

describe('lexicalEmbedding', () => {
  it('should score a paraphrase above an unrelated question when both share the topic words', () => {
    const sut = 'How do I reset my password?';

    const paraphrase = cos(sut, 'How can I reset the password for my account?');
    const unrelated = cos(sut, 'What is the weather forecast for Paris tomorrow?');

    expect(paraphrase).toBeGreaterThan(0.6);
    expect(unrelated).toBeLessThan(0.2);
    expect(paraphrase).toBeGreaterThan(unrelated + 0.4);
  });

  it('should match inflected forms when the words differ only by suffix', () => {
    const sut = 'cancelling my card orders';

    expect(cos(sut, 'cancelled card order')).toBeGreaterThan(cos(sut, 'activate new phone'));
    expect(cos(sut, 'cancelled card order')).toBeGreaterThan(0.6);
  });

  it('should be robust to case, punctuation and accents when the words are the same', () => {
    expect(cos('Café opening hours?', 'cafe OPENING hours')).toBeCloseTo(1, 6);
  });

  it('should return an L2-normalised vector of the requested dimension when the text has words', () => {
    const sut = lexicalEmbedding('The quick brown fox jumps over the lazy dog', 128);

    const norm = Math.sqrt(sut.reduce((s, v) => s + v * v, 0));
    expect(sut).toHaveLength(128);
    expect(norm).toBeCloseTo(1, 10);
  });

  it('should be deterministic when called twice with the same text', () => {
    expect(lexicalEmbedding('same text, same vector', DIM)).toEqual(
      lexicalEmbedding('same text, same vector', DIM),
    );
  });

  it('should return the zero vector when the text has no words', () => {
    expect(lexicalEmbedding('?! ...', 8)).toEqual(new Array(8).fill(0));
  });

  it('should lower the similarity when a negation is added', () => {
    expect(cos('the card arrived', 'the card has not arrived')).toBeLessThan(0.95);
  });

  it('should reject a dimension that is not a positive integer', () => {
    expect(() => lexicalEmbedding('x', 0)).toThrow(RangeError);
  });
});

describe('stemWord', () => {
  it.each([
    ['policies', 'policy'],
    ['changed', 'chang'],
    ['changing', 'chang'],
    ['change', 'chang'],
    ['running', 'run'],
    ['passwords', 'password'],
    ['status', 'status'],
  ])('should stem %s to %s', (word, stem) => {
    expect(stemWord(word)).toBe(stem);
  });
});
