import { InvalidRequest } from './domain-error';
import { inspectJsonBody, parseJsonBody } from './json-body';

describe('parseJsonBody', () => {
  it('should parse an ordinary body', () => {
    expect(parseJsonBody('{"title":"t","metadata":{"a":[1,2]}}')).toEqual({
      title: 't',
      metadata: { a: [1, 2] },
    });
  });

  it('should reject 100,000 levels of nesting without overflowing the stack, naming the top-level field', () => {
    const deep = `{"messages":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;

    expect(() => parseJsonBody(deep)).toThrow(InvalidRequest);
    expect(inspectJsonBody(JSON.parse(deep))).toEqual({
      field: 'messages',
      reason: 'is nested deeper than 32 levels',
    });
  });

  it.each([
    ['{"messages":[{"role":"user","content":"a\\u0000"}]}', 'messages[0].content'],
    ['{"content":"\\ud83d"}', 'content'],
    ['{"content":"\\ude00x"}', 'content'],
  ])('should reject %s naming %s', (text, field) => {
    expect(inspectJsonBody(JSON.parse(text))).toMatchObject({ field });
  });

  it('should accept well-formed astral characters', () => {
    expect(inspectJsonBody({ content: 'ok 😀 𝐀' })).toBeNull();
  });

  it('should reject prototype poisoning', () => {
    expect(() => parseJsonBody('{"__proto__":{"admin":true}}')).toThrow(InvalidRequest);
  });
});
