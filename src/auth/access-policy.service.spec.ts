import type { AuthContext } from './api-key.service';
import { AccessPolicy } from './access-policy.service';

const auth = (over: Partial<AuthContext>): AuthContext => ({
  tenantId: 't',
  tenantName: 'tenant',
  keyId: 'k',
  admin: false,
  scopes: ['chat'],
  ...over,
});

describe('AccessPolicy', () => {
  const sut = new AccessPolicy();

  it('should allow any model without an allow-list and only listed ones with one', () => {
    expect(() => sut.assertModelAllowed(auth({ models: null }), 'x')).not.toThrow();
    expect(() => sut.assertModelAllowed(auth({ models: ['a'] }), 'a')).not.toThrow();
    expect(() => sut.assertModelAllowed(auth({ models: ['a', 'b'] }), 'c')).toThrow(
      expect.objectContaining({
        code: 'ModelNotAllowed',
        extensions: { model: 'c', allowedModels: ['a', 'b'] },
      }),
    );
  });

  it('should name every missing scope', () => {
    expect(() => sut.assertScopes(auth({}), ['chat'])).not.toThrow();
    expect(() => sut.assertScopes(auth({}), ['chat', 'admin', 'usage:read'])).toThrow(
      expect.objectContaining({
        code: 'ScopeMissing',
        extensions: { missingScopes: ['admin', 'usage:read'] },
      }),
    );
    expect(() => sut.assertScopes(auth({ scopes: undefined }), ['chat'])).toThrow('chat');
  });
});
