import { messagesDigest } from '../common/message-digest';
import { canonicalJson, contextFingerprint, NO_CONTEXT, questionHash, scopeFingerprint } from './scope';
import type { ResponseCacheScope } from './response-cache.types';

const scope = (overrides: Partial<ResponseCacheScope> = {}): ResponseCacheScope => ({
  tenantId: 't1',
  agent: 'assistant',
  model: 'm',
  templateVersion: 'v1',
  params: { temperature: 0, maxTokens: 512 },
  context: NO_CONTEXT,
  ...overrides,
});

describe('response-cache scope', () => {
  it('should give a first question the empty context, and a later one a fingerprint of its history', () => {
    expect(contextFingerprint({ history: [] })).toBe(NO_CONTEXT);
    const a = contextFingerprint({
      history: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'hello' },
      ],
    });
    const b = contextFingerprint({
      history: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'hey' },
      ],
    });
    expect(a).not.toBe(NO_CONTEXT);
    expect(a).not.toBe(b);
    expect(contextFingerprint({ history: [], volatileContext: 'Today is 2026-11-21.' })).not.toBe(NO_CONTEXT);
    // Roles matter too: the same words said by the other side are another conversation.
    expect(contextFingerprint({ history: [{ role: 'assistant', content: 'hi' }] })).not.toBe(
      contextFingerprint({ history: [{ role: 'user', content: 'hi' }] }),
    );
  });

  it('should give the same fingerprint for a history and for its running digest', () => {
    const history = [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hello' },
    ];
    const tail = 'Today is 2026-11-29.';

    expect(contextFingerprint({ historyDigest: messagesDigest(history), volatileContext: tail })).toBe(
      contextFingerprint({ history, volatileContext: tail }),
    );
    expect(contextFingerprint({ historyDigest: messagesDigest(history.slice(0, 1)) })).not.toBe(
      contextFingerprint({ history }),
    );
    expect(contextFingerprint({ historyDigest: messagesDigest([]) })).toBe(NO_CONTEXT);
  });

  it('should change the scope fingerprint with every field that changes the answer', () => {
    const base = scopeFingerprint(scope());
    for (const change of [
      { tenantId: 't2' },
      { agent: 'billing' },
      { model: 'm2' },
      { templateVersion: 'v2' },
      { params: { temperature: 0.5, maxTokens: 512 } },
      { context: 'abc' },
    ]) {
      expect(scopeFingerprint(scope(change))).not.toBe(base);
    }
  });

  it('should not depend on the order of parameters or on absent ones', () => {
    expect(scopeFingerprint(scope({ params: { maxTokens: 512, temperature: 0, seed: undefined } }))).toBe(
      scopeFingerprint(scope()),
    );
    expect(canonicalJson({ b: 1, a: [1, { d: 2, c: 3 }] })).toBe('{"a":[1,{"c":3,"d":2}],"b":1}');
  });

  it('should hash questions by their normalised form', () => {
    expect(questionHash('What is a KV cache?')).toBe(questionHash('  what is a kv cache'));
    expect(questionHash('What is a KV cache?')).not.toBe(questionHash('What is a KV block?'));
  });
});
