import sjson from 'secure-json-parse';
import { InvalidRequest } from './domain-error';

/** Deepest nesting accepted in a JSON body (objects and arrays), levels. Deeper bodies are a 400 before validation. */
export const MAX_JSON_DEPTH = 32;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why a string cannot be accepted as text, or null. */
function textFault(s: string): string | null {
  if (s.includes('\u0000')) return 'contains a NUL character (U+0000), which text fields cannot hold';
  const lone = LONE_SURROGATE.exec(s);
  if (lone) {
    const code = lone[0].charCodeAt(0).toString(16).toUpperCase();
    return `contains a lone UTF-16 surrogate (U+${code}); send well-formed Unicode`;
  }
  return null;
}

/**
 * Checks a parsed JSON body without recursion (a hostile body cannot overflow the stack): nesting at most
 * `maxDepth` levels, and no NUL character or lone surrogate in any string or key. Such text cannot be
 * stored (PostgreSQL rejects NUL in `text` and `jsonb` and lone surrogates in `jsonb`) and would be
 * mangled on the way to the engine, so it is rejected up front, naming the field.
 * @returns the offending field (`messages[0].content`, `metadata.note`, `(body)`) and why, or null
 */
export function inspectJsonBody(
  body: unknown,
  maxDepth = MAX_JSON_DEPTH,
): { field: string; reason: string } | null {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value: body, path: '', depth: 0 }];
  while (stack.length > 0) {
    const { value, path, depth } = stack.pop()!;
    if (typeof value === 'string') {
      const fault = textFault(value);
      if (fault) return { field: path || '(body)', reason: fault };
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= maxDepth) {
      // Named by its top-level field: the full path of the deepest level would be as long as the nesting.
      const top = /^[^.[]+/.exec(path)?.[0];
      return { field: top ?? '(body)', reason: `is nested deeper than ${maxDepth} levels` };
    }
    if (Array.isArray(value)) {
      value.forEach((v, i) => stack.push({ value: v, path: `${path}[${i}]`, depth: depth + 1 }));
      continue;
    }
    for (const [key, v] of Object.entries(value)) {
      const child = path ? `${path}.${key}` : key;
      const fault = textFault(key);
      if (fault) return { field: child, reason: `has a key that ${fault}` };
      stack.push({ value: v, path: child, depth: depth + 1 });
    }
  }
  return null;
}

/**
 * Parses a JSON request body: prototype-poisoning safe (secure-json-parse, as Fastify's own parser),
 * then bounded by `inspectJsonBody` before anything validates or walks it.
 * @throws InvalidRequest (400) naming the field, or a 400 SyntaxError-like error for malformed JSON
 */
export function parseJsonBody(text: string, maxDepth = MAX_JSON_DEPTH): unknown {
  if (text.length === 0) {
    throw new InvalidRequest("The body is empty but content-type is 'application/json'.", {
      field: '(body)',
    });
  }
  let body: unknown;
  try {
    body = sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
  } catch (e) {
    throw new InvalidRequest(`The body is not valid JSON: ${e instanceof Error ? e.message : String(e)}.`, {
      field: '(body)',
    });
  }
  const fault = inspectJsonBody(body, maxDepth);
  if (fault) throw new InvalidRequest(`${fault.field} ${fault.reason}.`, { field: fault.field });
  return body;
}
