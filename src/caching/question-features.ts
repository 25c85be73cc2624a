import { createRequire } from 'node:module';
import type winkEnglishModel from 'wink-eng-lite-web-model';
import type winkNLP from 'wink-nlp';

/**
 * Lexical analysis of a question for the response-cache guards: the things that make two
 * close-looking questions different (negation and polarity, numbers, units and formats, dates,
 * named entities and identifiers, content words). Pure functions, no model: a guard must be
 * cheap, deterministic and explainable ("rejected by the date guard: 'today' vs '2024-12-31'").
 *
 * English-centric by design (the word lists below); text in other languages still gets the
 * number, unit, date and identifier checks, and its words are compared as content words.
 */

/** Everything the guards compare, extracted once per question. */
export interface QuestionFeatures {
  /** Negation cues (`not`, `no`, `never`, `without`, `-free`, ...), counted. */
  negations: number;
  /** Polarity axes present, e.g. `enable:+`, `order:-` (one word of an antonym pair). */
  polarity: Set<string>;
  /** Numeric values, canonical (`5`, `500000`, `4.5`), numbers inside dates excluded. */
  numbers: Set<string>;
  /** Units, currencies and data formats in order of appearance, canonical (`usd`, `celsius`, `csv`). */
  units: string[];
  /** Dates, times and relative time expressions, canonical (`2024-12-31`, `rel:today`, `year:2020`). */
  dates: Set<string>;
  /** Identifiers: tokens with digits or code symbols, search operators, domains (`gpt-4`, `c#`, `site:arxiv.org`). */
  identifiers: Set<string>;
  /** Lowercased forms of words written as names anywhere in the text (`berlin`, `openai`, `usd`). */
  namedWords: Set<string>;
  /** Lowercased word tokens (all of them), to test whether a named word occurs at all. */
  words: Set<string>;
  /** Content words as concept keys (stem or synonym class), fillers and function words removed. */
  content: string[];
  /** The lowercased word each `content` concept was first written as (`microservices` for `microservice`). */
  contentWords: Map<string, string>;
  /**
   * Directed pairs `source>target` (concept keys) read from the sentence's structure: the head nouns of
   * the arguments of to/into/onto/toward(s), from and than, across determiners, possessives and
   * adjectives (`string>int` for "convert a string to an int", `laptop>server` for "from my laptop to the
   * server", `python>java` for "is python faster than java"). See `directedPairs`.
   */
  directed: Set<string>;
}

interface Token {
  /** Original text of the token. */
  text: string;
  lower: string;
  /** First word of the text or of a sentence/clause (capitalisation there says nothing). */
  initial: boolean;
}

/**
 * Normalises a question for the exact-match key: Unicode NFKC, lowercase, whitespace collapsed,
 * trailing sentence punctuation dropped. Two questions with the same normal form are the same question.
 */
export function normalizeQuestion(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\u2018\u2019`]/g, "'")
    .replace(/[\u201c\u201d]/g, '"')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/[\s?.!\u3002\uff1f\uff01]+$/u, '')
    .trim();
}

/** Extracts the guard features of `text`. */
export function analyzeQuestion(text: string): QuestionFeatures {
  const features: QuestionFeatures = {
    negations: 0,
    polarity: new Set(),
    numbers: new Set(),
    units: [],
    dates: new Set(),
    identifiers: new Set(),
    namedWords: new Set(),
    words: new Set(),
    content: [],
    contentWords: new Map(),
    directed: new Set(),
  };
  let rest = prepare(text);
  rest = extractSpans(rest, features);
  const tokens = tokenize(rest);
  const words: Token[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    const consumed = classifyToken(token, tokens, i, features);
    if (consumed > 0) {
      i += consumed - 1;
      continue;
    }
    words.push(token);
  }
  analyzeWords(words, features);
  for (const pair of directedPairs(prepare(text))) features.directed.add(pair);
  return features;
}

/** Unicode and punctuation clean-up that keeps the signal (arrows mean "to", n't means not). */
function prepare(text: string): string {
  return text
    .normalize('NFKC')
    .replace(/[\u2018\u2019`]/g, "'")
    .replace(/[\u201c\u201d]/g, '"')
    .replace(/\u2192|->|=>/g, ' to ')
    .replace(/\u2265|>=/g, ' at least ')
    .replace(/\u2264|<=/g, ' at most ')
    .replace(/\b(can)'?t\b/gi, '$1 not')
    .replace(/\bwon'?t\b/gi, 'will not')
    .replace(/n't\b/gi, ' not')
    .replace(/'(s|re|ve|ll|d|m)\b/gi, '')
    .replace(/\bnot working\b/gi, 'broken')
    .replace(/\bset(?:ting)?[\s-]up\b/gi, 'setup')
    .replace(/\bhow[\s-]to\b/gi, 'how');
}

const MONTHS: Record<string, number> = {
  jan: 1,
  january: 1,
  feb: 2,
  february: 2,
  mar: 3,
  march: 3,
  apr: 4,
  april: 4,
  may: 5,
  jun: 6,
  june: 6,
  jul: 7,
  july: 7,
  aug: 8,
  august: 8,
  sep: 9,
  sept: 9,
  september: 9,
  oct: 10,
  october: 10,
  nov: 11,
  november: 11,
  dec: 12,
  december: 12,
};
const WEEKDAYS = new Set(['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday']);

/** Spans that are not words: search operators, URLs and domains, dates, times, money. */
function extractSpans(text: string, f: QuestionFeatures): string {
  let t = text;
  // Search operators (`site:arxiv.org`, `author:alice`, `after:2025-01-01`): identifiers, and dates when they hold one.
  t = t.replace(/\b([a-z]+):([^\s"']+)/gi, (_m, key: string, value: string) => {
    f.identifiers.add(`${key.toLowerCase()}:${value.toLowerCase()}`);
    const iso = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
    if (iso) f.dates.add(`${iso[1]}-${iso[2]}-${iso[3]}`);
    return ' ';
  });
  t = t.replace(/\bhttps?:\/\/\S+/gi, (m) => {
    f.identifiers.add(m.toLowerCase().replace(/[.,;)]+$/, ''));
    return ' ';
  });
  // ISO dates and d/m/y or m/d/y dates (kept as written: the order is ambiguous, equality is what matters).
  t = t.replace(/\b(\d{4})-(\d{1,2})-(\d{1,2})\b/g, (_m, y: string, mo: string, d: string) => {
    f.dates.add(`${y}-${mo.padStart(2, '0')}-${d.padStart(2, '0')}`);
    return ' ';
  });
  t = t.replace(/\b(\d{1,2})[/.](\d{1,2})[/.](\d{2,4})\b/g, (m) => {
    f.dates.add(m.replace(/\./g, '/'));
    return ' ';
  });
  // Month + day (+ year): "march 3", "3 march 2024".
  t = t.replace(
    /\b(?:(\d{1,2})(?:st|nd|rd|th)?\s+)?(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b(?:\s+(\d{1,2})(?:st|nd|rd|th)?\b)?(?:,?\s+(\d{4})\b)?/gi,
    (m, d1: string | undefined, month: string, d2: string | undefined, year: string | undefined) => {
      // "may" alone is a modal verb; only a month with a day or a year around it is a date.
      if (month.toLowerCase() === 'may' && !d1 && !d2 && !year) return m;
      const day = d1 ?? d2;
      f.dates.add(
        `${year ?? '*'}-${String(MONTHS[month.toLowerCase()]).padStart(2, '0')}${day ? `-${day.padStart(2, '0')}` : ''}`,
      );
      return ' ';
    },
  );
  // Times: 7pm, 7 pm, 19:00, 7:30am.
  t = t.replace(
    /\b(\d{1,2})(?::(\d{2}))?\s*(am|pm)\b/gi,
    (_m, h: string, min: string | undefined, ap: string) => {
      const hour = (Number(h) % 12) + (ap.toLowerCase() === 'pm' ? 12 : 0);
      f.dates.add(`time:${hour}:${min ?? '00'}`);
      return ' ';
    },
  );
  t = t.replace(/\b([01]?\d|2[0-3]):([0-5]\d)\b/g, (_m, h: string, min: string) => {
    f.dates.add(`time:${Number(h)}:${min}`);
    return ' ';
  });
  // Quarters and decades: Q1 2024, 1980s, '80s.
  t = t.replace(/\bq([1-4])\b/gi, (_m, q: string) => {
    f.dates.add(`quarter:${q}`);
    return ' ';
  });
  t = t.replace(/\b(1[89]\d0|20\d0)s\b/g, (_m, d: string) => {
    f.dates.add(`decade:${d}`);
    return ' ';
  });
  // Money and temperatures glued to numbers: $500k, 5%, 100°F, €20, 10kg.
  t = t.replace(
    /([$€£¥])\s?(\d[\d,]*(?:\.\d+)?)\s?(k|m|bn|b)?\b/gi,
    (_m, sym: string, n: string, mult: string | undefined) => {
      f.numbers.add(canonicalNumber(n, mult));
      f.units.push(CURRENCY_SYMBOLS[sym]);
      return ' ';
    },
  );
  t = t.replace(/(\d[\d,]*(?:\.\d+)?)\s?(%|°\s?[cf]\b|°)/gi, (_m, n: string, unit: string) => {
    f.numbers.add(canonicalNumber(n, undefined));
    f.units.push(unitOfSymbol(unit));
    return ' ';
  });
  t = t.replace(/°\s?([cf])\b/gi, (_m, u: string) => {
    f.units.push(u.toLowerCase() === 'c' ? 'celsius' : 'fahrenheit');
    return ' ';
  });
  return t;
}

const CURRENCY_SYMBOLS: Record<string, string> = { $: 'usd', '€': 'eur', '£': 'gbp', '¥': 'jpy' };

function unitOfSymbol(symbol: string): string {
  const s = symbol.replace(/\s/g, '').toLowerCase();
  if (s === '%') return 'percent';
  if (s === '°c') return 'celsius';
  if (s === '°f') return 'fahrenheit';
  return 'degree';
}

/** `1,000` -> `1000`; `500k` -> `500000`; `4.50` -> `4.5`. */
function canonicalNumber(n: string, mult: string | undefined): string {
  let value = Number(n.replace(/,/g, ''));
  const m = mult?.toLowerCase();
  if (m === 'k') value *= 1e3;
  else if (m === 'm') value *= 1e6;
  else if (m === 'b' || m === 'bn') value *= 1e9;
  return String(value);
}

/** Splits into tokens; sentence and clause starts are marked (their capitalisation is not a name). */
function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  const re = /[\p{L}\p{N}_#+.'-]+|[.!?:;()[\]"]/gu;
  let initial = true;
  for (const match of text.matchAll(re)) {
    let raw = match[0];
    if (/^[.!?:;()[\]"]$/.test(raw)) {
      if (/[.!?:;(["]/.test(raw)) initial = true;
      continue;
    }
    const endsSentence = /[.]$/.test(raw) && !/^\.+$/.test(raw) ? true : false;
    raw = raw.replace(/^[.'-]+|[.'-]+$/g, '');
    if (!raw) {
      if (match[0].includes('.')) initial = true;
      continue;
    }
    // Hyphen and slash compounds made of plain words are split into their words ("gluten-free", "rom-coms");
    // compounds with digits stay whole (gpt-4, utf-8) and become identifiers.
    // A number glued to its noun ("2-column", "10-minute") is a number and a word.
    const counted = /^(\d+)-(\p{L}+)$/u.exec(raw);
    const parts = counted
      ? [counted[1], counted[2]]
      : /\d/.test(raw) || raw.includes('_')
        ? [raw]
        : raw.split(/-+/).filter((p) => p.length > 0);
    for (const part of parts) {
      tokens.push({ text: part, lower: part.toLowerCase(), initial });
      initial = false;
    }
    if (endsSentence) initial = true;
  }
  return tokens;
}

const NUMBER_WORDS: Record<string, number> = {
  zero: 0,
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  thirteen: 13,
  fourteen: 14,
  fifteen: 15,
  sixteen: 16,
  seventeen: 17,
  eighteen: 18,
  nineteen: 19,
  twenty: 20,
  thirty: 30,
  forty: 40,
  fifty: 50,
  sixty: 60,
  seventy: 70,
  eighty: 80,
  ninety: 90,
  hundred: 100,
  thousand: 1000,
  million: 1e6,
  billion: 1e9,
  dozen: 12,
  single: 1,
  couple: 2,
  pair: 2,
  first: 1,
  second: 2,
  third: 3,
  fourth: 4,
  fifth: 5,
  tenth: 10,
};
/** Words that are numbers only next to a noun; alone they are ordinary words ("second opinion" is rare in questions). */
const WEAK_NUMBER_WORDS = new Set(['single', 'couple', 'pair', 'second']);

const RELATIVE_DATES: Record<string, string> = {
  today: 'rel:today',
  tonight: 'rel:today',
  tomorrow: 'rel:tomorrow',
  yesterday: 'rel:yesterday',
  now: 'rel:now',
  currently: 'rel:now',
  current: 'rel:now',
  latest: 'rel:now',
  newest: 'rel:now',
  present: 'rel:now',
  nowadays: 'rel:now',
  recent: 'rel:recent',
  recently: 'rel:recent',
  weekend: 'rel:weekend',
  weekly: 'per:week',
  daily: 'per:day',
  monthly: 'per:month',
  yearly: 'per:year',
  annual: 'per:year',
  annually: 'per:year',
  hourly: 'per:hour',
};
const PERIODS = new Set([
  'day',
  'week',
  'month',
  'year',
  'quarter',
  'decade',
  'century',
  'season',
  'weekend',
]);
const PERIOD_MODIFIERS: Record<string, string> = {
  this: 'this',
  next: 'next',
  last: 'last',
  previous: 'last',
  past: 'last',
  coming: 'next',
};

/** Measurement units, currencies and data formats; values are canonical names. */
const UNITS: Record<string, string> = {
  usd: 'usd',
  dollar: 'usd',
  dollars: 'usd',
  eur: 'eur',
  euro: 'eur',
  euros: 'eur',
  gbp: 'gbp',
  sterling: 'gbp',
  jpy: 'jpy',
  yen: 'jpy',
  cny: 'cny',
  rmb: 'cny',
  yuan: 'cny',
  inr: 'inr',
  rupee: 'inr',
  rupees: 'inr',
  chf: 'chf',
  cad: 'cad',
  aud: 'aud',
  btc: 'btc',
  bitcoin: 'btc',
  eth: 'eth',
  celsius: 'celsius',
  centigrade: 'celsius',
  fahrenheit: 'fahrenheit',
  kelvin: 'kelvin',
  percent: 'percent',
  percentage: 'percent',
  pct: 'percent',
  km: 'km',
  kilometer: 'km',
  kilometers: 'km',
  kilometre: 'km',
  kilometres: 'km',
  mile: 'mile',
  miles: 'mile',
  meter: 'meter',
  meters: 'meter',
  metre: 'meter',
  metres: 'meter',
  cm: 'cm',
  mm: 'mm',
  inch: 'inch',
  inches: 'inch',
  ft: 'foot',
  foot: 'foot',
  feet: 'foot',
  yard: 'yard',
  yards: 'yard',
  kg: 'kg',
  kilogram: 'kg',
  kilograms: 'kg',
  kilo: 'kg',
  kilos: 'kg',
  gram: 'gram',
  grams: 'gram',
  lb: 'pound',
  lbs: 'pound',
  oz: 'ounce',
  ounce: 'ounce',
  ounces: 'ounce',
  ton: 'ton',
  tons: 'ton',
  tonne: 'ton',
  liter: 'liter',
  liters: 'liter',
  litre: 'liter',
  litres: 'liter',
  ml: 'ml',
  gallon: 'gallon',
  gallons: 'gallon',
  kb: 'kb',
  mb: 'mb',
  gb: 'gb',
  tb: 'tb',
  kib: 'kb',
  mib: 'mb',
  gib: 'gb',
  tib: 'tb',
  mph: 'mph',
  kmh: 'kmh',
  kph: 'kmh',
  hz: 'hz',
  mhz: 'mhz',
  ghz: 'ghz',
  kw: 'kw',
  kwh: 'kwh',
  watt: 'watt',
  watts: 'watt',
  second: 'second',
  seconds: 'second',
  minute: 'minute',
  minutes: 'minute',
  hour: 'hour',
  hours: 'hour',
  csv: 'csv',
  tsv: 'tsv',
  json: 'json',
  jsonl: 'jsonl',
  yaml: 'yaml',
  yml: 'yaml',
  xml: 'xml',
  toml: 'toml',
  html: 'html',
  markdown: 'markdown',
  md: 'markdown',
  pdf: 'pdf',
  docx: 'docx',
  xlsx: 'xlsx',
  txt: 'txt',
  plaintext: 'txt',
  png: 'png',
  jpeg: 'jpeg',
  jpg: 'jpeg',
  webp: 'webp',
  gif: 'gif',
  svg: 'svg',
  bmp: 'bmp',
  tiff: 'tiff',
  heic: 'heic',
  mp3: 'mp3',
  wav: 'wav',
  flac: 'flac',
  aac: 'aac',
  ogg: 'ogg',
  mp4: 'mp4',
  mov: 'mov',
  mkv: 'mkv',
  avi: 'avi',
  webm: 'webm',
  parquet: 'parquet',
  avro: 'avro',
  protobuf: 'protobuf',
};
/** Unit words that are also ordinary words: a unit only right after a number. */
const WEAK_UNITS = new Set([
  'second',
  'seconds',
  'minute',
  'minutes',
  'hour',
  'hours',
  'foot',
  'feet',
  'yard',
  'yards',
  'ton',
  'tons',
  'md',
  'ml',
  'mb',
]);

/** Negation cues; `free` counts only as a compound suffix ("gluten-free"), `non` as a prefix. */
const NEGATIONS = new Set([
  'not',
  'no',
  'never',
  'without',
  'none',
  'nor',
  'neither',
  'cannot',
  'nothing',
  'nobody',
  'nowhere',
  'non',
]);

/** Antonym pairs that flip a question's meaning: word -> axis and pole. */
const POLARITY: Record<string, string> = {};
for (const [axis, plus, minus] of [
  ['enable', 'enable enabled enabling activate', 'disable disabled disabling deactivate'],
  ['include', 'include including included inclusive', 'exclude excluding excluded exclusive'],
  ['allow', 'allow allowed allowing permit', 'deny denied block blocked forbid forbidden prevent'],
  ['add', 'add adding added insert', 'remove removing removed delete deleting deleted'],
  [
    'increase',
    'increase increasing raise more higher maximize',
    'decrease decreasing reduce lower less fewer minimize',
  ],
  ['encrypt', 'encrypt encrypting encrypted', 'decrypt decrypting decrypted'],
  ['transfer', 'upload uploading uploaded', 'download downloading downloaded'],
  ['io', 'import importing imported', 'export exporting exported'],
  ['extreme', 'max maximum', 'min minimum'],
  ['order', 'ascending asc', 'descending desc reverse reversed'],
  ['time', 'before', 'after'],
  ['position', 'above over', 'below under'],
  ['quality', 'best advantages pros benefits benefit', 'worst disadvantages cons risks drawbacks'],
  ['trade', 'buy buying purchase', 'sell selling'],
  ['run', 'start starting', 'stop stopping'],
  ['access', 'open opening', 'close closing closed'],
  ['lock', 'lock locking locked', 'unlock unlocking unlocked'],
  ['theme', 'light', 'dark'],
  ['price', 'cheap budget affordable inexpensive', 'expensive luxury premium'],
  [
    'level',
    'beginner beginners newbie newbies novice starter basic basics intro introductory',
    'advanced expert experts',
  ],
  ['hardness', 'soft', 'hard'],
  ['temperature', 'hot warm', 'cold cool'],
  ['sequence', 'first earliest', 'last latest'],
  ['direction', 'inbound incoming', 'outbound outgoing'],
  ['visibility', 'public', 'private'],
  ['meaning', 'synonym synonyms', 'antonym antonyms'],
  ['legal', 'legal legally', 'illegal illegally torrent torrents pirated'],
  ['validity', 'valid', 'invalid'],
  ['connectivity', 'online', 'offline'],
  ['sync', 'sync synchronous', 'async asynchronous'],
  ['agreement', 'agree', 'disagree'],
  ['verdict', 'success successful', 'failure failed failing'],
] as const) {
  for (const w of plus.split(' ')) POLARITY[w] = `${axis}:+`;
  for (const w of minus.split(' ')) POLARITY[w] = `${axis}:-`;
}

/** Returns how many tokens starting at `i` were consumed as a number, unit, date or identifier (0 = a word). */
function classifyToken(token: Token, tokens: Token[], i: number, f: QuestionFeatures): number {
  const w = token.lower;
  const next = tokens[i + 1]?.lower;
  // Relative periods: "this week", "next month", "last year".
  if (PERIOD_MODIFIERS[w] && next && PERIODS.has(next.replace(/s$/, ''))) {
    const period = next.replace(/s$/, '');
    // "this weekend" is the weekend a bare "weekend" means; "this day" is today.
    if (w === 'this' && (period === 'weekend' || period === 'day'))
      f.dates.add(period === 'day' ? 'rel:today' : 'rel:weekend');
    else f.dates.add(`rel:${PERIOD_MODIFIERS[w]}-${period}`);
    return 2;
  }
  if (RELATIVE_DATES[w]) {
    // "weekend" and "this weekend" are one date; a bare "current"/"latest" before a noun still means now.
    f.dates.add(RELATIVE_DATES[w]);
    return 1;
  }
  if (WEEKDAYS.has(w) || WEEKDAYS.has(`${w}day`)) {
    f.dates.add(`weekday:${w}`);
    return 1;
  }
  // Ordinals with digits: 1st, 2nd, 3rd, 21st.
  const ordinal = /^(\d+)(st|nd|rd|th)$/.exec(w);
  if (ordinal) {
    f.numbers.add(String(Number(ordinal[1])));
    return 1;
  }
  // Plain numbers, with an optional k/m/bn multiplier; 4-digit years are dates.
  const number = /^(\d[\d,]*(?:\.\d+)?)(k|m|bn|b|x)?$/.exec(w);
  if (number) {
    const [, digits, mult] = number;
    if (!mult && /^(19|20)\d\d$/.test(digits)) {
      f.dates.add(`year:${digits}`);
      return 1;
    }
    f.numbers.add(canonicalNumber(digits, mult === 'x' ? undefined : mult));
    if (next && UNITS[next]) {
      f.units.push(UNITS[next]);
      return 2;
    }
    return 1;
  }
  // Number glued to a unit: 10kg, 5km, 16gb, 2x.
  const glued = /^(\d+(?:\.\d+)?)([a-z]+)$/.exec(w);
  if (glued && UNITS[glued[2]]) {
    f.numbers.add(canonicalNumber(glued[1], undefined));
    f.units.push(UNITS[glued[2]]);
    return 1;
  }
  if (NUMBER_WORDS[w] !== undefined && !(WEAK_NUMBER_WORDS.has(w) && !isNounLike(next))) {
    f.numbers.add(String(NUMBER_WORDS[w]));
    return 1;
  }
  if (UNITS[w] && !(WEAK_UNITS.has(w) && !/^\d/.test(tokens[i - 1]?.lower ?? ''))) {
    f.units.push(UNITS[w]);
    return 1;
  }
  // Identifiers: digits mixed with letters, code symbols, dotted names (gpt-4, ipv6, c#, node_modules, v3.2, docs.python.org).
  if ((/\d/.test(w) && /\p{L}/u.test(w)) || /[_#+]/.test(w) || /\p{L}\.\p{L}/u.test(w)) {
    f.identifiers.add(w);
    return 1;
  }
  return 0;
}

function isNounLike(word: string | undefined): boolean {
  return word !== undefined && /^\p{L}{3,}$/u.test(word) && !FUNCTION_WORDS.has(word);
}

/** Words and names: negations, polarity, named words, content concepts. */
function analyzeWords(tokens: Token[], f: QuestionFeatures): void {
  for (let i = 0; i < tokens.length; i++) {
    const { text, lower, initial } = tokens[i];
    f.words.add(lower);
    if (isName(text, initial)) f.namedWords.add(lower);
    if (NEGATIONS.has(lower) || (lower === 'free' && i > 0 && !FUNCTION_WORDS.has(tokens[i - 1].lower))) {
      f.negations++;
      continue;
    }
    if (POLARITY[lower]) f.polarity.add(POLARITY[lower]);
    if (FUNCTION_WORDS.has(lower) || FILLERS.has(lower)) continue;
    const concept = conceptOf(lower);
    f.content.push(concept);
    if (!f.contentWords.has(concept)) f.contentWords.set(concept, lower);
  }
}

/**
 * A word written as a name: an acronym (USD, NYC), mixed case (OpenAI, iOS), or capitalised away
 * from the start of a sentence (Berlin in "weather in Berlin"). Sentence-initial capitals are not names.
 */
function isName(text: string, initial: boolean): boolean {
  if (!/\p{Lu}/u.test(text)) return false;
  if (/^\p{Lu}{2,}s?$/u.test(text)) return true;
  if (/\p{Ll}\p{Lu}/u.test(text)) return true;
  return !initial && /^\p{Lu}/u.test(text) && text.toLowerCase() !== 'i';
}

/** The concept a content word stands for: its synonym class, else its stem. */
export function conceptOf(word: string): string {
  return SYNONYMS[word] ?? SYNONYMS[stem(word)] ?? stem(word);
}

/** A light suffix stemmer: plural, past, progressive and a few derivational endings. */
export function stem(word: string): string {
  if (word.length <= 3) return word;
  let w = word;
  if (w.endsWith('sses')) w = w.slice(0, -2);
  else if (w.endsWith('ies') && w.length > 4) w = `${w.slice(0, -3)}y`;
  else if (w.endsWith('s') && !/(ss|us|is)$/.test(w)) w = w.slice(0, -1);
  if (w.endsWith('ied') && w.length > 4) w = `${w.slice(0, -3)}y`;
  else if (w.endsWith('ing') && w.length > 5) w = undouble(w.slice(0, -3));
  else if (w.endsWith('ed') && w.length > 4) w = undouble(w.slice(0, -2));
  else if (w.endsWith('ation') && w.length > 7) w = w.slice(0, -5);
  else if (w.endsWith('ment') && w.length > 7) w = w.slice(0, -4);
  else if (w.endsWith('ly') && w.length > 5) w = w.slice(0, -2);
  if (w.endsWith('e') && w.length > 4) w = w.slice(0, -1);
  return w;
}

function undouble(w: string): string {
  const n = w.length;
  return n >= 2 && w[n - 1] === w[n - 2] && !'aeiouslz'.includes(w[n - 1]) ? w.slice(0, -1) : w;
}

/**
 * English function words: never content. The question words that ask for a different kind of answer
 * (where: a place, when: a time, why: a reason, who: a person) are not among them: "where is my card"
 * and "how do I get a card" are different questions. What, which and how are.
 */
const FUNCTION_WORDS = new Set(
  (
    'a an the and or but if then so than as of in on at to for from by with into onto about across after ' +
    'before between through during via per vs versus within without over under up down out off ' +
    'i me my mine we us our you your he him his she her it its they them their this that these those ' +
    'is am are was were be been being do does did done have has had having can could will would shall should ' +
    'may might must need needs let lets get gets got getting there here which whom whose what how ' +
    'any some all each every both either other another such same own only just also very too really much many ' +
    'please yes one ones s t'
  ).split(' '),
);

/**
 * Words that shape the request but not its topic ("how to", "tips", "explain", "best"):
 * two questions that differ only in these ask the same thing.
 */
const FILLERS = new Set(
  (
    'guide guides tutorial tutorials tip tips advice steps step way ways example examples sample samples ' +
    'explain explained explaining explanation explanations overview basics introduction intro help ' +
    'show find search look lookup locate give tell list return fetch display retrieve provide ' +
    'best top good great greatest recommended recommend recommendation recommendations popular common ' +
    'useful quick simple easy brief briefly short effective effectively properly correctly ' +
    'compare comparison comparing difference differences different versus ' +
    'know learn understand info information details describe description ' +
    'use using usage used setup want like make ' +
    'thing things stuff something anything kind type types sort ' +
    'question questions answer answers'
  ).split(' '),
);

/** A few generic synonym classes (not domain vocabularies): words of one class are one concept. */
const SYNONYMS: Record<string, string> = {};
for (const group of [
  'near nearest nearby closest close',
  'create build generate construct',
  'fix fixing fixes troubleshoot troubleshooting solve resolve repair',
  'problem problems issue issues error errors broken bug bugs trouble',
  'cheap budget affordable inexpensive',
  'film films movie movies',
  'picture pictures image images photo photos',
  'buy purchase',
  'delete remove',
  'big large huge',
  'small tiny little',
  'fast quick speedy rapid',
  'price prices pricing cost costs',
  'beginner beginners newbie newbies novice novices starter',
  'definition define meaning means',
  'discussion discussions discuss discussing discussed thread threads post posts',
  'count number',
  'reference references citation citations',
  'headline headlines news',
]) {
  const words = group.split(' ');
  for (const w of words) SYNONYMS[w] = `~${words[0]}`;
}

/** Prepositions whose argument is where something goes. */
const TARGET_PREPOSITIONS = new Set(['to', 'into', 'onto', 'toward', 'towards']);
/** Tags skipped between a preposition and its argument's head: determiners, possessives, adjectives, numbers. */
const MODIFIER_TAGS = new Set(['DET', 'PRON', 'ADJ', 'NUM', 'ADV']);
const NOUN_TAGS = new Set(['NOUN', 'PROPN']);

interface TaggedWord {
  lower: string;
  pos: string;
}

/**
 * The direction a question asks about, read from its part-of-speech structure (wink-nlp's tagger
 * with `wink-eng-lite-web-model`): for each to/into/onto/toward(s), the head noun of its argument is the
 * target and the source is the argument of a `from` in the same sentence, else the head noun right
 * before the preposition ("convert a string to an int": `string>int`); for `than`, the noun compared
 * and the noun it is compared with ("is python faster than java": `python>java`). A head noun is the
 * last noun of the noun run after any determiners, possessives, adjectives and numbers ("from my old
 * laptop": `laptop`). `to` tagged as an infinitive marker ("how to move") has no argument. `vs` and
 * `or` are symmetric ("nuxt vs next" asks what "next vs nuxt" asks) and give no direction.
 * @returns pairs of concept keys, `source>target`
 */
export function directedPairs(text: string): string[] {
  const words = tagWords(text);
  const pairs = new Set<string>();
  const add = (sources: string[], targets: string[]) => {
    for (const a of sources) for (const b of targets) if (a !== b) pairs.add(`${a}>${b}`);
  };
  let from: string[] = [];
  words.forEach((w, i) => {
    if (w.lower === 'from' && w.pos === 'ADP' && from.length === 0) from = argumentAfter(words, i);
  });
  words.forEach((w, i) => {
    if (w.pos !== 'ADP' && w.pos !== 'SCONJ') return;
    if (TARGET_PREPOSITIONS.has(w.lower)) {
      add(from.length > 0 ? from : argumentBefore(words, i), argumentAfter(words, i));
    } else if (w.lower === 'than') {
      add(argumentBefore(words, i, true), argumentAfter(words, i));
    }
  });
  return [...pairs];
}

/**
 * The nouns of the argument after the preposition at `i` (the noun run after any modifiers: "the
 * server" -> `server`, "microservices pitfalls" -> `microservic`, `pitfall`), as concept keys. Every
 * noun of the run is kept: which one is the head is ambiguous in a compound, and a swap shows in any.
 */
function argumentAfter(words: readonly TaggedWord[], i: number): string[] {
  let j = i + 1;
  while (j < words.length && MODIFIER_TAGS.has(words[j].pos)) j++;
  const nouns: string[] = [];
  while (j < words.length && (NOUN_TAGS.has(words[j].pos) || words[j].pos === 'X'))
    nouns.push(conceptOf(words[j++].lower));
  return nouns;
}

/**
 * The noun right before the preposition at `i` (for `than`, across the comparative and the
 * verb: "python is faster than java"), as a concept key.
 */
function argumentBefore(words: readonly TaggedWord[], i: number, comparison = false): string[] {
  let j = i - 1;
  if (comparison) {
    while (
      j >= 0 &&
      !NOUN_TAGS.has(words[j].pos) &&
      ['ADJ', 'ADV', 'AUX', 'VERB', 'PART'].includes(words[j].pos)
    )
      j--;
  }
  return j >= 0 && NOUN_TAGS.has(words[j].pos) ? [conceptOf(words[j].lower)] : [];
}

/**
 * wink-nlp with its English model: 3.8 MB of JavaScript, about 16 MB of heap once loaded (measured with
 * `node --expose-gc`), 0.2-0.6 s to load, then about 0.2 ms a question. Loaded at boot where the response
 * cache is on (`loadQuestionTagger`, from ResponseCache), else on first use: a process with the cache
 * off never loads it.
 */
let tagger: { nlp: ReturnType<typeof winkNLP>; its: ReturnType<typeof winkNLP>['its'] } | undefined;

/** Loads the part-of-speech tagger now (idempotent), so that no request pays its load. */
export function loadQuestionTagger(): void {
  if (tagger) return;
  // Loaded here, not imported at the top, so that importing this file (normalizeQuestion) does not load it.
  const load = createRequire(__filename);
  const createNlp = load('wink-nlp') as typeof winkNLP;
  const nlp = createNlp(load('wink-eng-lite-web-model') as typeof winkEnglishModel, ['sbd', 'pos']);
  tagger = { nlp, its: nlp.its };
}

/** Whether the tagger (and its model) is loaded in this process. */
export function questionTaggerLoaded(): boolean {
  return tagger !== undefined;
}

function tagWords(text: string): TaggedWord[] {
  loadQuestionTagger();
  const { nlp, its } = tagger!;
  const tokens = nlp.readDoc(text).tokens();
  // wink-nlp's `its` helpers are plain functions handed to `out()` (its documented API), not methods.
  /* eslint-disable @typescript-eslint/unbound-method */
  const values = tokens.out(its.value);
  const tags = tokens.out(its.pos);
  /* eslint-enable @typescript-eslint/unbound-method */
  return values.map((v, i) => ({ lower: v.toLowerCase(), pos: tags[i] }));
}
