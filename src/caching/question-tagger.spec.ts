import type { CachingConfig } from '../config/caching.config';
import { analyzeQuestion, questionTaggerLoaded } from './question-features';
import { ResponseCache } from './response-cache.service';

/** Only the config is read at boot; the rest of the cache is not touched. */
const cache = (enabled: boolean): ResponseCache =>
  new (ResponseCache as unknown as new (...args: unknown[]) => ResponseCache)(
    { RESPONSE_CACHE_ENABLED: enabled } as CachingConfig,
    {},
    {},
    {},
    {},
    [],
    null,
  );

// One file, one module registry: the tests below run in order on a process that has not loaded the tagger.
describe('the question tagger (wink-nlp and its English model)', () => {
  it('should not be loaded by a process whose response cache is off', () => {
    cache(false).onModuleInit();

    expect(questionTaggerLoaded()).toBe(false);
  });

  it('should be loaded at boot where the response cache is on, and tag questions', () => {
    cache(true).onModuleInit();

    expect(questionTaggerLoaded()).toBe(true);
    expect(analyzeQuestion('How do I move files into the archive folder?').directed.size).toBeGreaterThan(0);
  });
});
