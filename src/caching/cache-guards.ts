import type { WordSimilarity } from '../inference/word-vectors';
import type { QuestionFeatures } from './question-features';

/** Names of the built-in guards, in the order they run. */
export type GuardName = 'negation' | 'number' | 'unit' | 'date' | 'entity' | 'direction' | 'term';

/**
 * A guard looks at a semantic candidate (a cached question close to the new one) and says whether
 * the two differ in something that changes the answer. Guards run in order; the first that rejects
 * is recorded on the turn (`cache.response.guard`) and counted in the stats.
 */
export interface ResponseCacheGuard {
  readonly name: GuardName | (string & {});
  /** Returns a short reason when `query` and `candidate` must not share an answer, else null. */
  reject(query: QuestionFeatures, candidate: QuestionFeatures): string | null;
}

const setDiff = <T>(a: Set<T>, b: Set<T>): T[] => [...a].filter((x) => !b.has(x));

function differ<T>(a: Set<T>, b: Set<T>): string | null {
  const onlyA = setDiff(a, b);
  const onlyB = setDiff(b, a);
  if (onlyA.length === 0 && onlyB.length === 0) return null;
  return `${onlyA.join(',') || '-'} vs ${onlyB.join(',') || '-'}`;
}

/** Negation and polarity: "with" vs "without", "nut-free" vs "with nuts", "enable" vs "disable". */
export const negationGuard: ResponseCacheGuard = {
  name: 'negation',
  reject(q, c) {
    if (q.negations !== c.negations) return `negations ${q.negations} vs ${c.negations}`;
    for (const p of q.polarity) {
      const [axis, pole] = p.split(':');
      const opposite = `${axis}:${pole === '+' ? '-' : '+'}`;
      if (c.polarity.has(opposite) && !c.polarity.has(p))
        return `${axis}: ${pole} vs ${pole === '+' ? '-' : '+'}`;
    }
    return null;
  },
};

/** Numbers: "top 5" vs "top 10", "$500k" vs "$600k", "HTTP 404" vs "HTTP 500" ("5" and "five" are equal). */
export const numberGuard: ResponseCacheGuard = {
  name: 'number',
  reject: (q, c) => differ(q.numbers, c.numbers),
};

/**
 * Units, currencies and formats, with their order: "°C" vs "°F", "CSV" vs "JSON",
 * "USD to EUR" vs "EUR to USD", "Markdown to HTML" vs "HTML to Markdown".
 */
export const unitGuard: ResponseCacheGuard = {
  name: 'unit',
  reject(q, c) {
    const set = differ(new Set(q.units), new Set(c.units));
    if (set) return set;
    const qs = dedupeRuns(q.units);
    const cs = dedupeRuns(c.units);
    if (qs.length > 1 && qs.join('>') !== cs.join('>')) return `order ${qs.join('>')} vs ${cs.join('>')}`;
    return null;
  },
};

function dedupeRuns(units: string[]): string[] {
  const out: string[] = [];
  for (const u of units) if (!out.includes(u)) out.push(u);
  return out;
}

/** Dates and times: "today" vs "next week", "2020" vs "now", "7pm" vs "8pm". */
export const dateGuard: ResponseCacheGuard = {
  name: 'date',
  reject: (q, c) => differ(q.dates, c.dates),
};

/**
 * Named entities and identifiers: a name written in either question (Berlin, OpenAI, USD, Windows)
 * must occur in both; identifiers (gpt-4, c#, site:arxiv.org, v3.2) must match exactly.
 */
export const entityGuard: ResponseCacheGuard = {
  name: 'entity',
  reject(q, c) {
    const ids = differ(q.identifiers, c.identifiers);
    if (ids) return ids;
    const names = new Set([...q.namedWords, ...c.namedWords]);
    const missing = [...names].filter((n) => q.words.has(n) !== c.words.has(n));
    return missing.length > 0 ? missing.join(',') : null;
  },
};

/**
 * Direction: the same two arguments of to/into/from/than in swapped roles ("a monolith into
 * microservices" vs "microservices into a monolith", "from my laptop to the server" vs "from the
 * server to my laptop"), as `directedPairs` reads them from the sentence's structure.
 */
export const directionGuard: ResponseCacheGuard = {
  name: 'direction',
  reject(q, c) {
    for (const pair of q.directed) {
      const [a, b] = pair.split('>');
      if (c.directed.has(`${b}>${a}`) && !c.directed.has(pair)) return `${a}>${b} vs ${b}>${a}`;
    }
    return null;
  },
};

/** How strictly the content-word guard compares two questions. */
export interface TermTolerance {
  /** Questions of up to this many content words must match word for word (or by near-synonym). */
  strictWords: number;
  /** Beyond `strictWords`, one unmatched word is allowed per this many content words. */
  wordsPerMismatch: number;
  /**
   * Least word-vector cosine at which a word of one question is matched by a near-synonym in the other
   * ("lawyer"/"attorney", "car"/"vehicle"); > 1 turns near-synonyms off.
   */
  synonymSimilarity: number;
  /**
   * Words more frequent than this rank in the word model's corpus are generic ("provide", "allow",
   * "tool"): an unmatched one counts `commonWordCost` instead of 1 against the allowance of a long
   * question. 0 = every word counts 1.
   */
  commonRank: number;
  commonWordCost: number;
}

/**
 * Content words: every topic word of each question must be matched in the other: same stem, same
 * synonym class, a morphological variant (a shared prefix of at least 4 letters covering 80% of the
 * shorter stem) or, with word vectors, a near-synonym (cosine of the two words at least
 * `synonymSimilarity`; never for a word written as a name or a question word). Catches the key term that changes a
 * question ("postgres vacuum settings" vs "postgres wal settings") and an added qualifier
 * ("... in Spanish"). Long questions may differ in a few words: an allowance of
 * (content words - `strictWords`) / `wordsPerMismatch`, where a generic word costs less.
 */
export function termGuard(tolerance: TermTolerance, words?: WordSimilarity): ResponseCacheGuard {
  return {
    name: 'term',
    reject(q, c) {
      const onlyQ = unmatched(q, c, tolerance, words);
      const onlyC = unmatched(c, q, tolerance, words);
      const n = Math.min(q.content.length, c.content.length);
      const allowed = Math.max(0, (n - tolerance.strictWords) / tolerance.wordsPerMismatch);
      const cost = (f: QuestionFeatures, concepts: string[]): number =>
        concepts.reduce((sum, concept) => {
          const word = f.contentWords.get(concept) ?? concept;
          return sum + (words && words.rank(word) < tolerance.commonRank ? tolerance.commonWordCost : 1);
        }, 0);
      if (cost(q, onlyQ) <= allowed && cost(c, onlyC) <= allowed) return null;
      return `${onlyQ.join(',') || '-'} vs ${onlyC.join(',') || '-'}`;
    },
  };
}

/** Question words ask for different kinds of answer (a place, a time, a reason): never near-synonyms. */
const QUESTION_WORDS = new Set(['where', 'when', 'why', 'who', 'whose']);

/** Concepts of `a` with no match in `b`. */
function unmatched(
  a: QuestionFeatures,
  b: QuestionFeatures,
  t: TermTolerance,
  words?: WordSimilarity,
): string[] {
  const pool = new Set(b.content);
  return a.content.filter((w) => {
    if (pool.has(w) || b.content.some((o) => variantOf(w, o))) return false;
    if (!words || t.synonymSimilarity > 1) return true;
    const word = a.contentWords.get(w) ?? w;
    if (a.namedWords.has(word) || QUESTION_WORDS.has(word)) return true;
    for (const [, other] of b.contentWords) {
      if (!b.namedWords.has(other) && words.similarity(word, other) >= t.synonymSimilarity) return false;
    }
    return true;
  });
}

/** True for morphological variants ("partition"/"partitioning", "explain"/"explanation"). */
function variantOf(a: string, b: string): boolean {
  if (a.startsWith('~') || b.startsWith('~')) return false;
  const shorter = Math.min(a.length, b.length);
  let prefix = 0;
  while (prefix < shorter && a[prefix] === b[prefix]) prefix++;
  return prefix >= 4 && prefix >= 0.8 * shorter;
}

/**
 * Default tolerance (docs/response-cache.md): questions of up to 6 content words match word for word or
 * by near-synonym; longer ones may differ in one word per 1.5 beyond that, a generic word (the 20,000
 * most frequent) costing a quarter. Near-synonyms from a GloVe cosine of 0.8: above the co-hyponyms that
 * name different things ("laptops"/"phones" 0.78, "cats"/"dogs" 0.79, "spanish"/"french" 0.76), below
 * the synonyms ("lawyer"/"attorney" 0.85, "car"/"vehicle" 0.86, "movies"/"films" 0.91). Some co-hyponyms
 * score higher still ("comedies"/"dramas" 0.89): word vectors cannot tell those apart.
 */
export const DEFAULT_TERM_TOLERANCE: TermTolerance = {
  strictWords: 6,
  wordsPerMismatch: 1.5,
  synonymSimilarity: 0.8,
  commonRank: 20_000,
  commonWordCost: 0.25,
};

/** Without word vectors: the lexical rules alone, as before near-synonyms. */
export const LEXICAL_TERM_TOLERANCE: TermTolerance = {
  strictWords: 6,
  wordsPerMismatch: 2,
  synonymSimilarity: 2,
  commonRank: 0,
  commonWordCost: 1,
};

/** The built-in guards by name; adding a guard = writing it and naming it here (and in RESPONSE_CACHE_GUARD_NAMES). */
const BUILT_IN_GUARDS: Record<GuardName, (words?: WordSimilarity) => ResponseCacheGuard> = {
  negation: () => negationGuard,
  number: () => numberGuard,
  unit: () => unitGuard,
  date: () => dateGuard,
  entity: () => entityGuard,
  direction: () => directionGuard,
  term: (words) => termGuard(words ? DEFAULT_TERM_TOLERANCE : LEXICAL_TERM_TOLERANCE, words),
};

/** The built-in guards in their default order. */
export function defaultGuards(words?: WordSimilarity): ResponseCacheGuard[] {
  return guardsByName(['negation', 'number', 'unit', 'date', 'entity', 'direction', 'term'], words);
}

/**
 * The built-in guards with these names, in the given order; `words` gives the content-word guard its
 * near-synonyms (without it, the lexical rules alone).
 * @throws RangeError for an unknown name
 */
export function guardsByName(names: readonly string[], words?: WordSimilarity): ResponseCacheGuard[] {
  return names.map((name) => {
    const make = BUILT_IN_GUARDS[name as GuardName];
    if (!make) throw new RangeError(`unknown response-cache guard ${name}`);
    return make(words);
  });
}

/** Runs `guards` in order; returns the first rejection (guard name and reason) or null. */
export function firstRejection(
  guards: readonly ResponseCacheGuard[],
  query: QuestionFeatures,
  candidate: QuestionFeatures,
): { guard: string; reason: string } | null {
  for (const guard of guards) {
    const reason = guard.reject(query, candidate);
    if (reason !== null) return { guard: guard.name, reason };
  }
  return null;
}
