import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { DomainError } from './common/domain-error';
import { toProblem } from './common/problem.filter';
import { PROBLEM_STATUSES } from './common/problem-statuses';
import { ApiKeyNotFound } from './auth/auth.errors';
import { EngineTokenizeUnsupported, RequestAborted } from './inference/inference.errors';

/** Every source file under src/ that declares a domain error (`extends DomainError`), specs left out. */
function errorModules(dir = __dirname): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return errorModules(path);
    const source = entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts');
    return source && readFileSync(path, 'utf8').includes('extends DomainError') ? [path] : [];
  });
}

/** The codes those files declare (`readonly code = '...'`). */
function declaredErrorCodes(): { file: string; code: string }[] {
  return errorModules().flatMap((path) =>
    [...readFileSync(path, 'utf8').matchAll(/readonly code = '(\w+)'/g)].map((m) => ({
      file: relative(__dirname, path),
      code: m[1],
    })),
  );
}

describe('domain error codes and their HTTP statuses', () => {
  const declared = declaredErrorCodes();

  it('should give every declared domain error code a status, so none falls to 500 unseen', () => {
    const missing = declared.filter((e) => !Object.hasOwn(PROBLEM_STATUSES, e.code));

    expect(declared.length).toBeGreaterThan(30);
    expect(missing).toEqual([]);
  });

  it('should list no status for a code that no error class throws', () => {
    const thrown = new Set(declared.map((e) => e.code));

    const stale = Object.keys(PROBLEM_STATUSES).filter((code) => !thrown.has(code));

    expect(stale).toEqual([]);
  });

  it('should answer a client that went away with 499, and the codes that used to fall to 500 with theirs', () => {
    const statusOf = (error: DomainError): number => toProblem(error, '/v1/x', 'req-1').status;

    expect(toProblem(new RequestAborted('The client disconnected.'), '/v1/x', 'req-1')).toMatchObject({
      status: 499,
      title: 'Client Closed Request',
      code: 'RequestAborted',
    });
    expect(statusOf(new EngineTokenizeUnsupported('no /tokenize'))).toBe(502);
    expect(statusOf(new ApiKeyNotFound('no such key'))).toBe(404);
  });

  it('should not type-check an error whose code has no status', () => {
    // The assertion is the compiler's: `npm run typecheck` fails if this stops being an error.
    class Unmapped extends DomainError {
      // @ts-expect-error 'CodeWithoutStatus' is not a key of PROBLEM_STATUSES
      readonly code = 'CodeWithoutStatus';
    }

    expect(toProblem(new Unmapped('x'), '/v1/x', 'req-1').status).toBe(500);
  });
});
