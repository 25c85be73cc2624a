import { randomUUID } from 'node:crypto';
import type { AuthContext } from '../../src/auth/api-key.service';
import { RateLimitService } from '../../src/auth/limits/rate-limit.service';
import { AppConfig } from '../../src/config/app.config';
import { AuthConfig } from '../../src/config/auth.config';
import { MetricsConfig } from '../../src/config/metrics.config';
import { RedisConfig } from '../../src/config/redis.config';
import { MetricsService } from '../../src/observability/metrics.service';
import { deleteRedisPrefix } from '../factories/redis';

/** RateLimitService against the local Redis: tenant-wide limits, tpm charging and spend budgets. */
describe('RateLimitService (integration)', () => {
  const prefix = `kvchat-test-${randomUUID()}:`;
  let sut: RateLimitService;

  beforeAll(async () => {
    sut = new RateLimitService(
      new AppConfig(),
      new AuthConfig(),
      Object.assign(new RedisConfig(), { REDIS_KEY_PREFIX: prefix }),
      new MetricsService(Object.assign(new MetricsConfig(), { METRICS_PROCESS: false })),
    );
    await sut.onModuleInit();
  });

  afterAll(async () => {
    await sut.onApplicationShutdown();
    await deleteRedisPrefix(prefix);
  });

  const context = (tenantId: string, key: Partial<AuthContext['limits']> = {}): AuthContext => ({
    tenantId,
    tenantName: 't',
    keyId: randomUUID(),
    admin: false,
    scopes: ['chat'],
    limits: {
      key: { rpm: null, tpm: null, budgets: null },
      tenant: { rpm: null, tpm: null, budgets: null },
      ...key,
    },
  });

  it("should share a tenant's rpm between its keys and name the tenant when it is spent", async () => {
    const tenant = randomUUID();
    const limits = { tenant: { rpm: 3, tpm: null, budgets: null } };
    const one = context(tenant, limits);
    const two = context(tenant, limits);
    await sut.admit(one);
    await sut.admit(two);
    expect((await sut.admit(one))['x-ratelimit-remaining-requests']).toBe('0');
    await expect(sut.admit(two)).rejects.toMatchObject({
      code: 'RateLimitExceeded',
      extensions: { holder: 'tenant', limit: 'requests' },
    });
    // Another tenant is untouched.
    await expect(sut.admit(context(randomUUID(), limits))).resolves.toMatchObject({
      'x-ratelimit-remaining-requests': '2',
    });
  });

  it('should admit while the minute has tokens left, charge real usage after, then refuse until the window resets', async () => {
    const auth = context(randomUUID(), { key: { rpm: null, tpm: 100, budgets: null } });
    expect(await sut.admit(auth)).toMatchObject({
      'x-ratelimit-limit-tokens': '100',
      'x-ratelimit-remaining-tokens': '100',
    });
    await sut.chargeTokens(auth, 60);
    expect((await sut.admit(auth))['x-ratelimit-remaining-tokens']).toBe('40');
    await sut.chargeTokens(auth, 60);
    await expect(sut.admit(auth)).rejects.toMatchObject({
      code: 'RateLimitExceeded',
      extensions: { limit: 'tokens', holder: 'key' },
      rateLimitHeaders: { 'x-ratelimit-remaining-tokens': '0' },
    });
  });

  it('should charge spend in USD to day and month budgets and refuse once one is spent', async () => {
    const budgets = { spendPerDay: 0.01, spendPerMonth: 1, tokensPerMonth: 1_000_000 };
    const auth = context(randomUUID(), { key: { rpm: null, tpm: null, budgets } });
    await sut.admit(auth);
    await sut.chargeTokens(auth, 1000, 0.006);
    await sut.admit(auth);
    await sut.chargeTokens(auth, 1000, 0.006);
    const error = await sut.admit(auth).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'BudgetExceeded',
      extensions: { budget: 'spendPerDay', holder: 'key', limit: 0.01, used: 0.012 },
    });
  });
});
