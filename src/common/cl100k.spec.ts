import { get_encoding } from 'tiktoken';
import { cl100k, MAX_PIECE_CHARS, SEGMENT_CHARS } from './cl100k';

/** tiktoken's own cl100k_base, unbounded: the reference for exact counts. */
const reference = get_encoding('cl100k_base');
const exact = (text: string): Uint32Array => reference.encode(text, [], []);

const utf8 = new TextDecoder();
const decode = (ids: Uint32Array): string => utf8.decode(cl100k.decodeBytes(ids));

/** Deterministic text of `length` code points drawn from `alphabet` (an LCG). */
function pseudoRandom(alphabet: string, length: number, seed = 7): string {
  let state = seed;
  const chars = [...alphabet];
  return Array.from({ length }, () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return chars[(state >>> 8) % chars.length];
  }).join('');
}

describe('cl100k', () => {
  it('should give exactly tiktoken’s ids for ordinary text longer than one segment', () => {
    const prose =
      "The quick brown fox doesn't jump over 1234567 lazy dogs; naïve café — 東京 🇫🇷 <|im_end|>\n\n\tindented   text. ";
    const sut = prose.repeat(Math.ceil((3 * SEGMENT_CHARS) / prose.length));

    expect(cl100k.encode(sut)).toEqual(exact(sut));
  });

  it('should encode a 32,000-char run of one letter to the same ids as the unbounded BPE', () => {
    const sut = 'A'.repeat(32_000);

    const ids = cl100k.encode(sut);

    expect(ids).toHaveLength(4000);
    expect(decode(ids)).toBe(sut);
  });

  it('should round-trip long runs of random letters, punctuation, whitespace and astral letters', () => {
    for (const alphabet of ['abcdefghijklmnopqrstuvwxyz', '!?.,;:-_=+*', ' \t', '𝐀𝐁𝐂𝐃', '東京都大阪']) {
      const sut = `x ${pseudoRandom(alphabet, 5 * MAX_PIECE_CHARS + 3)} y`;

      expect(decode(cl100k.encode(sut))).toBe(sut);
    }
  });

  it('should count a cut run within one token per cut of the unbounded BPE', () => {
    const sut = pseudoRandom('abcdefghijklmnopqrstuvwxyz', 16 * MAX_PIECE_CHARS);

    const bounded = cl100k.encode(sut).length;

    expect(Math.abs(bounded - exact(sut).length)).toBeLessThanOrEqual(16);
  });

  it('should recognise ChatML special tokens only when asked', () => {
    const sut = '<|im_start|>user\nHi<|im_end|>\n';

    expect(cl100k.encode(sut, { specials: true })[0]).toBe(100264);
    expect([...cl100k.encode(sut)]).not.toContain(100264);
  });

  it('should yield to the event loop between slices and give the same ids as encode', async () => {
    const sut = pseudoRandom('abcdefghijklmnopqrstuvwxyz ', 20 * SEGMENT_CHARS);
    let turns = 0;
    let done = false;
    const spin = (): void => {
      turns++;
      if (!done) setImmediate(spin);
    };
    setImmediate(spin);

    const ids = await cl100k.encodeAsync(sut, { sliceMs: 0 });
    done = true;

    expect(ids).toEqual(cl100k.encode(sut));
    expect(turns).toBeGreaterThan(10);
  });
});
