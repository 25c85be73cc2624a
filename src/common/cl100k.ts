import { get_encoding, type Tiktoken } from 'tiktoken';

/** ChatML special tokens at the ids OpenAI assigns them in cl100k. */
export const IM_START_TOKEN = '<|im_start|>';
export const IM_END_TOKEN = '<|im_end|>';
export const END_OF_TEXT_TOKEN = '<|endoftext|>';
/** Special tokens recognised by `encode(text, {specials: true})`, with their cl100k ids. */
export const CL100K_SPECIALS: Readonly<Record<string, number>> = {
  [END_OF_TEXT_TOKEN]: 100257,
  [IM_START_TOKEN]: 100264,
  [IM_END_TOKEN]: 100265,
};

/**
 * Longest run of one pre-tokenizer class (letters, punctuation, whitespace) encoded as one piece, chars.
 * BPE merges are quadratic in a piece's length in every JS tokenizer measured (js-tiktoken: 16,000 × "A"
 * in 67 s; tiktoken's WASM and gpt-tokenizer: 32,000 × "A" in 1.3-2.4 s), so longer runs are cut into
 * pieces of this length. Ordinary text never has pieces this long (words, numbers of ≤ 3 digits,
 * short punctuation), so its counts are exact; a cut costs at most one extra token (measured on
 * 32,000 chars: 0 on one repeated letter, whitespace or CJK, +0.3-0.6% on random letters, +1.5% on random
 * punctuation). 128 is where tiktoken's cost per char is lowest on CJK, letters and punctuation alike.
 */
export const MAX_PIECE_CHARS = 128;
/** Ordinary text is encoded in segments of about this many chars (cut before a space that starts a word). */
export const SEGMENT_CHARS = 2048;
/** `encodeAsync` yields to the event loop once it has worked this long, ms. */
export const DEFAULT_SLICE_MS = 2;

/** A run long enough to be cut: one optional leading non-letter + letters, punctuation, or whitespace. */
const LONG_RUN = new RegExp(
  `[^\\r\\n\\p{L}\\p{N}]?\\p{L}{${MAX_PIECE_CHARS},}|[^\\s\\p{L}\\p{N}]{${MAX_PIECE_CHARS},}|\\s{${MAX_PIECE_CHARS},}`,
  'gu',
);
const WORD_START = / (?=\p{L})/gu;
const SPECIALS_PATTERN = new RegExp(
  Object.keys(CL100K_SPECIALS)
    .map((s) => s.replace(/[|\\{}()[\]^$+*?.]/g, '\\$&'))
    .join('|'),
  'g',
);

/**
 * Text encoded once by `warm`: every CJK Unified Ideograph (U+4E00-U+9FFF, in MAX_PIECE_CHARS pieces) and
 * a little Latin, digits and punctuation. A fresh encoder is slow on the first text of a kind (its regex
 * automaton is built lazily): the first 32,000-char CJK message had pieces of 6-10 ms of CPU unwarmed and
 * at most 1-2 ms after this warm-up, which costs ~40 ms (measured on the 2-core dev machine).
 */
const WARM_UP_TEXT =
  "The quick brown fox doesn't jump over 1,234.56 lazy dogs! naïve café — !?.,;:-_=+*#%&/<>[]{} " +
  Array.from({ length: 0x9fff - 0x4e00 + 1 }, (_, i) => String.fromCharCode(0x4e00 + i)).join('');
let warmed = false;

let shared: Tiktoken | undefined;
/** One WASM encoder per process (building it from the ranks takes ~0.5 s; it is stateless). */
function encoder(): Tiktoken {
  shared ??= get_encoding('cl100k_base', {
    [IM_START_TOKEN]: CL100K_SPECIALS[IM_START_TOKEN],
    [IM_END_TOKEN]: CL100K_SPECIALS[IM_END_TOKEN],
  });
  return shared;
}

/** One unit of work: ordinary text to BPE, or a special token's id. */
type Segment = string | number;

/** Index of a cut at or before `at` that does not split a surrogate pair. */
function codePointCut(text: string, at: number): number {
  const c = text.charCodeAt(at - 1);
  return c >= 0xd800 && c <= 0xdbff ? at - 1 : at;
}

/** Cuts ordinary text into segments of ≤ SEGMENT_CHARS, preferring the start of a word (`" w"`). */
function* textSegments(text: string): Generator<string> {
  let start = 0;
  while (text.length - start > SEGMENT_CHARS) {
    // A space followed by a letter always starts a cl100k piece, so a cut there changes nothing.
    const windowStart = start + SEGMENT_CHARS / 2;
    let wordStart = -1;
    for (const m of text.slice(windowStart, start + SEGMENT_CHARS).matchAll(WORD_START)) wordStart = m.index;
    const cut = wordStart >= 0 ? windowStart + wordStart : codePointCut(text, start + SEGMENT_CHARS);
    yield text.slice(start, cut);
    start = cut;
  }
  if (start < text.length) yield text.slice(start);
}

/** Ordinary text (no special tokens) cut so that no BPE piece is longer than MAX_PIECE_CHARS. */
function* boundedSegments(text: string): Generator<string> {
  let from = 0;
  for (const run of text.matchAll(LONG_RUN)) {
    const at = run.index;
    if (at > from) yield* textSegments(text.slice(from, at));
    const body = run[0];
    for (let i = 0; i < body.length; ) {
      let end = Math.min(body.length, i + MAX_PIECE_CHARS);
      if (end < body.length) end = codePointCut(body, end);
      yield body.slice(i, end);
      i = end;
    }
    from = at + body.length;
  }
  if (from < text.length) yield* textSegments(text.slice(from));
}

/** Every segment of `text`: special tokens (when recognised) as ids, the rest as bounded text. */
function* segments(text: string, specials: boolean): Generator<Segment> {
  if (!specials) {
    yield* boundedSegments(text);
    return;
  }
  let from = 0;
  for (const m of text.matchAll(SPECIALS_PATTERN)) {
    if (m.index > from) yield* boundedSegments(text.slice(from, m.index));
    yield CL100K_SPECIALS[m[0]];
    from = m.index + m[0].length;
  }
  if (from < text.length) yield* boundedSegments(text.slice(from));
}

/** Options of `encode`/`encodeAsync`. */
export interface Cl100kEncodeOptions {
  /** Recognise `<|im_start|>`, `<|im_end|>` and `<|endoftext|>` as special tokens (default: encode them as text). */
  specials?: boolean;
}

/** Concatenates the id arrays of consecutive segments. */
function concat(parts: readonly Uint32Array[], total: number): Uint32Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint32Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * cl100k_base BPE through tiktoken (OpenAI's Rust core, WASM), linear in the input: long runs are cut
 * to MAX_PIECE_CHARS before BPE (see there for the effect on counts), and ordinary text is encoded in
 * segments of ≤ SEGMENT_CHARS. `encode` is synchronous (a 32,000-char message with no whitespace:
 * ~10-60 ms of CPU on the 2-core dev machine, against 1-2 s unbounded); `encodeAsync` does the same
 * work in slices of ≈ DEFAULT_SLICE_MS and yields to the event loop between them, so a hostile message
 * cannot stall other requests. Figures from `npm run bench:tokenizer`.
 */
export const cl100k = {
  /** Token ids of `text`. */
  encode(text: string, options: Cl100kEncodeOptions = {}): Uint32Array {
    const enc = encoder();
    const parts: Uint32Array[] = [];
    let total = 0;
    for (const s of segments(text, options.specials === true)) {
      const ids = typeof s === 'number' ? Uint32Array.of(s) : enc.encode_ordinary(s);
      parts.push(ids);
      total += ids.length;
    }
    return concat(parts, total);
  },

  /**
   * Token ids of `text`, as `encode`, yielding to the event loop (setImmediate) every `sliceMs` of work.
   * @param sliceMs longest stretch of synchronous work, ms (one segment is never split further)
   */
  async encodeAsync(
    text: string,
    options: Cl100kEncodeOptions & { sliceMs?: number } = {},
  ): Promise<Uint32Array> {
    const enc = encoder();
    const sliceMs = options.sliceMs ?? DEFAULT_SLICE_MS;
    const parts: Uint32Array[] = [];
    let total = 0;
    let sliceStart = performance.now();
    for (const s of segments(text, options.specials === true)) {
      const ids = typeof s === 'number' ? Uint32Array.of(s) : enc.encode_ordinary(s);
      parts.push(ids);
      total += ids.length;
      if (performance.now() - sliceStart >= sliceMs) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
    }
    return concat(parts, total);
  },

  /**
   * Builds the shared encoder (~0.2-0.5 s) and warms it on WARM_UP_TEXT (~40 ms), once per process, so
   * that neither lands on a request. Call at boot, before serving.
   */
  warm(): void {
    if (warmed) return;
    warmed = true;
    const enc = encoder();
    for (const s of boundedSegments(WARM_UP_TEXT)) enc.encode_ordinary(s);
  },

  /** UTF-8 bytes of token ids (special tokens as their strings). A token may end inside a character. */
  decodeBytes(ids: readonly number[] | Uint32Array): Uint8Array {
    return encoder().decode(ids instanceof Uint32Array ? ids : Uint32Array.from(ids));
  },
};
