import {
  DEFAULT_TERM_TOLERANCE,
  defaultGuards,
  firstRejection,
  guardsByName,
  LEXICAL_TERM_TOLERANCE,
  termGuard,
} from './cache-guards';
import { sharedWordVectors } from '../inference/word-vectors';
import { analyzeQuestion, directedPairs, normalizeQuestion } from './question-features';

/** The guards as the app builds them: with the in-process word vectors for near-synonyms. */
const words = sharedWordVectors();
const verdict = (query: string, candidate: string): string | null =>
  firstRejection(defaultGuards(words), analyzeQuestion(query), analyzeQuestion(candidate))?.guard ?? null;

describe('response-cache guards', () => {
  describe('close-but-different questions', () => {
    it.each([
      // negation and polarity
      ['Recipe for pesto (nut-free)', 'pesto recipe with pine nuts', 'negation'],
      ["'machine learning' exact phrase search", 'search machine learning without quotes', 'negation'],
      ['enable two-factor for forum account', 'disable two factor for forum account', 'negation'],
      ['python sort list ascending', 'python sort list descending', 'negation'],
      ["can't connect to the database", 'connect to the database', 'negation'],
      // numbers
      ['top 5 coffee shops in Seattle', 'top 10 coffee shops in Seattle', 'number'],
      [
        'calculate mortgage payment for $500k at 5%',
        'monthly payment on $600k mortgage at 5 percent',
        'number',
      ],
      ['what is HTTP status 404', 'explain HTTP 500', 'number'],
      ['Explain RSA in two sentences', 'Explain RSA in three sentences', 'number'],
      // units, currencies, formats and their direction
      ['temperature in Celsius for New York now', 'current temperature in New York (°F)', 'unit'],
      ['convert 10 USD to EUR', 'convert 10 EUR to USD', 'unit'],
      ['convert Markdown to HTML', 'convert HTML to Markdown', 'unit'],
      ['find CSV download for unemployment data 2023', 'get 2023 unemployment data as JSON', 'unit'],
      ['how far is 5 km', 'how far is 5 miles', 'unit'],
      // dates and times
      ['weather in Berlin today', 'weather in Berlin next week', 'date'],
      ['apple stock price as of 2024-12-31', 'apple stock price today', 'date'],
      ['Top universities in Germany 2024 ranking', 'Top universities in Germany 2022 ranking', 'date'],
      ['book a table tonight at 7pm', 'book a table tonight at 8 pm', 'date'],
      ['population of Berlin 2020', 'Berlin population now', 'date'],
      // named entities and identifiers
      ['How to reset a Windows 11 password', 'How to reset a Mac 11 password', 'entity'],
      ['site:arxiv.org Transformers review', 'Transformers review site:openreview.net', 'entity'],
      ['c# nullable reference types overview', 'f# nullable reference types overview', 'entity'],
      ['download latest NVIDIA driver for Windows', 'download latest AMD driver for Windows', 'entity'],
      ['search guides for migrating to ipv6', 'search guides for migrating to ipv4', 'entity'],
      // direction of a transformation: the arguments found across determiners, possessives, adjectives
      [
        'split monolith into microservices pitfalls',
        'split microservices into monolith pitfalls',
        'direction',
      ],
      ['convert a string to an int', 'convert an int to a string', 'direction'],
      ['copy files from my laptop to the server', 'copy files from the server to my laptop', 'direction'],
      [
        'how to split a monolith into microservices',
        'how to split microservices into a monolith',
        'direction',
      ],
      [
        'move photos from my old phone to my new tablet',
        'move photos from my new tablet to my old phone',
        'direction',
      ],
      [
        'is postgres faster than mysql for analytics',
        'is mysql faster than postgres for analytics',
        'direction',
      ],
      ['move the database from mysql to postgres', 'move the database from postgres to mysql', 'direction'],
      // near-synonyms do not bridge different things
      ['python dataclass default factory examples', 'python dataclass slots examples', 'term'],
      ['best laptops for students', 'best phones for students', 'term'],
      // a lowercase key term or an added qualifier
      ['postgres vacuum settings explained', 'postgres wal settings explained', 'term'],
      [
        'capture network packets with tcpdump basics',
        'capture network packets with wireshark basics',
        'term',
      ],
      ['markdown table alignment help', 'markdown table alignment help in spanish', 'term'],
      ['run multiple versions of python side by side', 'run multiple versions of node side by side', 'term'],
      ['where is my new card', 'how do I get a new card', 'term'],
      ['when will my card arrive', 'where will my card arrive', 'term'],
    ])('should reject %j for %j with the %s guard', (query, candidate, guard) => {
      expect(verdict(query, candidate)).toBe(guard);
      expect(verdict(candidate, query)).toBe(guard);
    });
  });

  describe('same questions in other words', () => {
    it.each([
      ['python sort list ascending', 'how to sort a list in python ascending'],
      ['weather in Berlin today', "today's weather in Berlin"],
      ['how much is 10 USD in EUR', 'how much is 10 dollars in euros'],
      ['top 5 coffee shops in Seattle', 'best five coffee shops in Seattle'],
      ['show me JPEG to PNG converter', 'JPEG→PNG converter'],
      ['weather in Sofia this weekend', 'Sofia weekend weather'],
      ['kafka consumer lag monitoring', 'monitoring kafka consumer lag'],
      ['k8s liveness vs readiness probe difference', 'difference between liveness and readiness probes k8s'],
      ['create a table with two columns name,age', 'create a 2-column table: name and age'],
      ['show top 3 restaurants with rating ≥4.5', 'list three restaurants rated at least 4.5'],
      ['restaurants open now near me', 'restaurants currently open nearby'],
      // near-synonyms (word vectors) and word order
      ['Best novels for teenagers', 'Best novels for teens'],
      ['where to rent a car in Lisbon', 'where to rent a vehicle in Lisbon'],
      ['cheap flights to Rome', 'inexpensive flights to Rome'],
      ['where to buy a used car', 'where to purchase a used car'],
      ['best comedy films of the 1980s', 'best comedy movies of the 1980s'],
      ['nuxt vs next for content sites', 'next vs nuxt for content sites'],
      ['how do I convert a string to an int in python', 'python: convert a string to an int'],
    ])('should let %j and %j share an answer', (query, candidate) => {
      expect(verdict(query, candidate)).toBeNull();
      expect(verdict(candidate, query)).toBeNull();
    });

    it('should let long paraphrases differ in a few words but not short ones', () => {
      const sut = termGuard(LEXICAL_TERM_TOLERANCE);
      const long = analyzeQuestion(
        'Gradio lets developers build machine learning demos and web applications with a few lines of Python',
      );
      const longParaphrase = analyzeQuestion(
        'Gradio helps developers build machine learning demos and web applications with a few lines of Python',
      );
      expect(sut.reject(long, longParaphrase)).toBeNull();
      expect(
        sut.reject(analyzeQuestion('rotate api keys safely'), analyzeQuestion('store api keys safely')),
      ).not.toBeNull();
    });
  });

  it('should match near-synonyms only with word vectors', () => {
    const query = analyzeQuestion('how to find a good lawyer in Boston');
    const candidate = analyzeQuestion('how to find a good attorney in Boston');
    expect(termGuard(DEFAULT_TERM_TOLERANCE, words).reject(query, candidate)).toBeNull();
    expect(termGuard(LEXICAL_TERM_TOLERANCE).reject(query, candidate)).toBe('lawyer vs attorney');
    expect(
      termGuard({ ...DEFAULT_TERM_TOLERANCE, synonymSimilarity: 0.9 }, words).reject(query, candidate),
    ).not.toBeNull();
  });

  it('should not match a name by a near-synonym', () => {
    const sut = termGuard(DEFAULT_TERM_TOLERANCE, words);
    expect(words.similarity('berlin', 'munich')).toBeGreaterThan(0.7);
    expect(
      sut.reject(analyzeQuestion('museums in Berlin'), analyzeQuestion('museums in Munich')),
    ).not.toBeNull();
  });

  it('should read the arguments of to/into/from/than from the sentence structure', () => {
    expect(directedPairs('convert a string to an int')).toEqual(['str>int']);
    expect(directedPairs('copy files from my laptop to the server')).toEqual(['laptop>server']);
    expect(directedPairs('how to move photos')).toEqual([]);
    expect(directedPairs('is python faster than java')).toEqual(['python>java']);
    expect(directedPairs('nuxt vs next for content sites')).toEqual([]);
  });

  it('should run only the guards named, in order', () => {
    const sut = guardsByName(['date', 'number']);
    const rejection = firstRejection(
      sut,
      analyzeQuestion('top 5 posts today'),
      analyzeQuestion('top 10 posts yesterday'),
    );
    expect(rejection?.guard).toBe('date');
    expect(() => guardsByName(['nonsense'])).toThrow(RangeError);
  });

  it('should say why a candidate was rejected', () => {
    const rejection = firstRejection(
      defaultGuards(),
      analyzeQuestion('weather in Berlin today'),
      analyzeQuestion('weather in Berlin tomorrow'),
    );
    expect(rejection).toEqual({ guard: 'date', reason: 'rel:today vs rel:tomorrow' });
  });
});

describe('normalizeQuestion', () => {
  it('should give one form to questions that differ in case, spacing and final punctuation', () => {
    expect(normalizeQuestion('  What is a KV cache?  ')).toBe('what is a kv cache');
    expect(normalizeQuestion('what is a  KV cache')).toBe('what is a kv cache');
    expect(normalizeQuestion('What is a KV cache?!')).toBe(normalizeQuestion('what is a kv cache.'));
  });

  it('should keep what changes the question', () => {
    expect(normalizeQuestion('Is it 5?')).not.toBe(normalizeQuestion('Is it 6?'));
    expect(normalizeQuestion('a, b')).not.toBe(normalizeQuestion('a b'));
  });
});
