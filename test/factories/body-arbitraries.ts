import fc from 'fast-check';

/**
 * fast-check building blocks for request bodies, shared by the property tests that pit a precompiled
 * JSON schema against its DTO (the chat completion and turn body schemas).
 */

/** Mostly values the DTO accepts (around its bounds), sometimes ones it refuses (past them, wrong types). */
export const field = <T>(good: T[], bad: unknown[]) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...good) },
    { weight: 1, arbitrary: fc.constantFrom(...bad) },
  );

/** Absent in three bodies of five. */
export const optional = <T>(arbitrary: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 2, arbitrary });

/** Present in one body of ten. */
export const rare = <T>(arbitrary: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 9, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary });

/** The object without its undefined fields (absent, as in a parsed JSON body). */
export const defined = (o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
