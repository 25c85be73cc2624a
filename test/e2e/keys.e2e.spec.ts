import { randomUUID } from 'node:crypto';
import { startEngineSimulator, type RunningSimulator } from '../../src/simulator/simulator.server';
import { createScratchDatabase, type ScratchDatabase } from '../factories/postgres';
import { deleteRedisPrefix } from '../factories/redis';
import { api, startTestApp, type TestApp } from '../factories/test-app';

/**
 * Keys managed over HTTP, limits and budgets, on two API replicas sharing one PostgreSQL and one
 * Redis (so limits must hold across replicas and revocation must reach the other replica within
 * API_KEY_CACHE_SECONDS).
 */
describe('API keys, scopes, limits and budgets (e2e, two replicas)', () => {
  const CACHE_SECONDS = 1;
  let db: ScratchDatabase;
  let sim: RunningSimulator;
  let a: TestApp;
  let b: TestApp;
  let platformKey: string;
  let model: string;
  let tenantAdminKey: string;
  let tenantId: string;
  const prefix = `kvchat-test-${randomUUID()}:`;

  beforeAll(async () => {
    db = await createScratchDatabase();
    sim = await startEngineSimulator({ timing: { timeScale: 0 }, replyTokens: { min: 8, max: 16 } });
    const env = {
      DATABASE_URL: db.url,
      INFERENCE_ENDPOINTS: sim.baseURL,
      RESPONSE_CACHE_ENABLED: 'false',
      API_KEY_CACHE_SECONDS: String(CACHE_SECONDS),
      REDIS_KEY_PREFIX: prefix,
    };
    a = await startTestApp(env);
    b = await startTestApp(env);
    // The first platform-admin key is made the way `npm run keys:create -- --platform-admin` makes it.
    platformKey = (await a.keys.create(`ops-${randomUUID().slice(0, 8)}`, { admin: true })).key;
    model = (await api(`${a.url}/v1/models`, { key: platformKey })).body.data[0].id;

    const tenant = await api(`${a.url}/v1/admin/tenants`, {
      key: platformKey,
      body: { name: `acme-${randomUUID().slice(0, 8)}` },
    });
    expect(tenant.status).toBe(201);
    tenantId = tenant.body.id;
    const admin = await api(`${a.url}/v1/admin/keys`, {
      key: platformKey,
      body: { name: 'acme admin', tenant: tenantId, scopes: ['admin', 'usage:read'] },
    });
    expect(admin.status).toBe(201);
    tenantAdminKey = admin.body.key;
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await sim?.close();
    await db?.drop();
    await deleteRedisPrefix(prefix);
  });

  const complete = (url: string, key: string, content: string, m = model) =>
    api(`${url}/v1/chat/completions`, {
      key,
      body: { model: m, messages: [{ role: 'user', content }], max_tokens: 16 },
    });

  it('should create a key whose secret is shown once, in its tenant, and list it without the secret', async () => {
    const created = await api(`${a.url}/v1/admin/keys`, {
      key: tenantAdminKey,
      body: {
        name: 'svc',
        scopes: ['chat'],
        models: [model],
        rpm: 10,
        tpm: 5000,
        budgets: { spendPerDay: 2 },
      },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'svc',
      tenantId,
      scopes: ['chat'],
      models: [model],
      rpm: 10,
      tpm: 5000,
      budgets: { spendPerDay: 2 },
      status: 'active',
      platformAdmin: false,
    });
    expect(created.body.key).toMatch(/^kvc_[\w-]{43}$/);
    expect(created.body.key.startsWith(created.body.prefix)).toBe(true);

    const listed = await api(`${b.url}/v1/admin/keys`, { key: tenantAdminKey });
    expect(listed.status).toBe(200);
    const mine = listed.body.data.find((k: any) => k.id === created.body.id);
    expect(mine).toMatchObject({ name: 'svc', tenantId });
    expect(mine.key).toBeUndefined();
    expect(listed.body.data.every((k: any) => k.tenantId === tenantId)).toBe(true);

    const fetched = await api(`${b.url}/v1/admin/keys/${created.body.id}`, { key: tenantAdminKey });
    expect(fetched.body).toMatchObject({ id: created.body.id, name: 'svc' });

    const patched = await api(`${b.url}/v1/admin/keys/${created.body.id}`, {
      method: 'PATCH',
      key: tenantAdminKey,
      body: { models: null, rpm: 20 },
    });
    expect(patched.body).toMatchObject({ models: null, rpm: 20, tpm: 5000, scopes: ['chat'] });
  });

  it('should keep tenant admins inside their tenant and platform-admin keys out of their reach', async () => {
    const other = await api(`${a.url}/v1/admin/keys`, {
      key: tenantAdminKey,
      body: { name: 'x', tenant: a.tenantA },
    });
    expect(other.status).toBe(404);
    const platformKeys = await api(`${a.url}/v1/admin/keys`, { key: platformKey });
    const someoneElse = platformKeys.body.data.find((k: any) => k.tenantId !== tenantId);
    expect(someoneElse).toBeDefined();
    expect((await api(`${a.url}/v1/admin/keys/${someoneElse.id}`, { key: tenantAdminKey })).status).toBe(404);
    expect(
      (
        await api(`${a.url}/v1/admin/tenants`, {
          key: tenantAdminKey,
          body: { name: `evil-${randomUUID()}` },
        })
      ).status,
    ).toBe(403);
    const tenants = await api(`${a.url}/v1/admin/tenants`, { key: tenantAdminKey });
    expect(tenants.body.data.map((t: any) => t.id)).toEqual([tenantId]);
  });

  it('should answer 403 naming the missing scope', async () => {
    const chatOnly = await api(`${a.url}/v1/admin/keys`, {
      key: tenantAdminKey,
      body: { name: 'c', scopes: ['chat'] },
    });
    const res = await complete(a.url, chatOnly.body.key, 'hello');
    expect(res.status).toBe(403);
    // The OpenAI-compatible route answers OpenAI's error object; kvchat's problem members are in `error.kvchat`.
    expect(res.body.error).toMatchObject({ type: 'permission_error', code: 'scope_missing' });
    expect(res.body.error.kvchat).toMatchObject({ code: 'ScopeMissing', missingScopes: ['completions'] });
    expect(res.body.error.message).toContain('completions');
    const admin = await api(`${a.url}/v1/admin/keys`, { key: chatOnly.body.key });
    expect(admin.body).toMatchObject({ status: 403, code: 'ScopeMissing', missingScopes: ['admin'] });
    expect((await api(`${a.url}/v1/conversations`, { key: chatOnly.body.key })).status).toBe(200);
  });

  it('should allow one model at 3 rpm across both replicas: 403 for another model, then 429 with the headers', async () => {
    const created = await api(`${a.url}/v1/admin/keys`, {
      key: tenantAdminKey,
      body: { name: 'limited', scopes: ['completions'], models: [model], rpm: 3 },
    });
    const key = created.body.key;

    const first = await complete(a.url, key, 'What is a prefix cache?');
    expect(first.status).toBe(200);
    expect(first.headers.get('x-ratelimit-limit-requests')).toBe('3');
    expect(first.headers.get('x-ratelimit-remaining-requests')).toBe('2');
    expect(first.headers.get('x-ratelimit-reset-requests')).toMatch(/^(\d+ms|\d+s|1m0s)$/);

    const otherModel = await complete(b.url, key, 'Hello there', 'gpt-4o');
    expect(otherModel.status).toBe(403);
    expect(otherModel.body.error.kvchat).toMatchObject({
      code: 'ModelNotAllowed',
      model: 'gpt-4o',
      allowedModels: [model],
    });

    const third = await complete(b.url, key, 'What is a KV block?');
    expect(third.status).toBe(200);
    expect(third.headers.get('x-ratelimit-remaining-requests')).toBe('0');

    const limited = await complete(a.url, key, 'And a replica?');
    expect(limited.status).toBe(429);
    expect(limited.body.error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    expect(limited.body.error.kvchat).toMatchObject({
      code: 'RateLimitExceeded',
      limit: 'requests',
      holder: 'key',
    });
    expect(limited.headers.get('content-type')).toContain('application/json');
    expect(limited.headers.get('x-ratelimit-limit-requests')).toBe('3');
    expect(limited.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  it('should charge real tokens after the call: a spent token budget is 429 naming the budget and its reset', async () => {
    const created = await api(`${a.url}/v1/admin/keys`, {
      key: tenantAdminKey,
      body: {
        name: 'tiny',
        scopes: ['completions'],
        models: [model],
        tpm: 100_000,
        budgets: { tokensPerDay: 5 },
      },
    });
    const key = created.body.key;
    const first = await complete(a.url, key, 'Explain tokens per minute.');
    expect(first.status).toBe(200);
    expect(first.headers.get('x-ratelimit-limit-tokens')).toBe('100000');
    expect(first.headers.get('x-ratelimit-remaining-tokens')).toBe('100000');
    const used = first.body.usage.total_tokens as number;
    expect(used).toBeGreaterThan(5);

    const second = await complete(b.url, key, 'And per day?');
    expect(second.status).toBe(429);
    const now = new Date();
    const midnight = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
    expect(second.body.error).toMatchObject({ type: 'insufficient_quota', code: 'insufficient_quota' });
    expect(second.body.error.kvchat).toMatchObject({
      code: 'BudgetExceeded',
      budget: 'tokensPerDay',
      holder: 'key',
      limit: 5,
      used,
      resetsAt: midnight.toISOString(),
    });
    expect(second.body.error.message).toContain('tokensPerDay');
    expect(second.headers.get('x-ratelimit-remaining-tokens')).toBe(String(100_000 - used));
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it("should hold one model, 3 rpm and a tiny token budget on turns, charged from the turn's real usage", async () => {
    const created = await api(`${a.url}/v1/admin/keys`, {
      key: tenantAdminKey,
      body: { name: 'turns', scopes: ['chat'], models: [model], rpm: 3, budgets: { tokensPerDay: 5 } },
    });
    expect(created.status).toBe(201);
    const key = created.body.key;
    const conversation = await api(`${a.url}/v1/conversations`, { key, body: {} });
    expect(conversation.status).toBe(201);
    expect(conversation.headers.get('x-ratelimit-remaining-requests')).toBe('2');
    const turn = (url: string, content: string, k = key) =>
      api(`${url}/v1/conversations/${conversation.body.id}/turns`, {
        key: k,
        body: { content, maxTokens: 16 },
      });

    const first = await turn(b.url, 'What is a prefix cache?');
    expect(first.status).toBe(201);
    expect(first.headers.get('x-ratelimit-limit-requests')).toBe('3');
    expect(first.headers.get('x-ratelimit-remaining-requests')).toBe('1');
    const usage = first.body.assistantMessage.usage;
    const used = usage.promptTokens + usage.completionTokens;
    expect(used).toBeGreaterThan(5);
    expect(first.body.assistantMessage.savings).toMatchObject({
      cacheLayer: usage.cachedTokens > 0 ? 'engine-prefix' : 'none',
      enginePrefix: { tokens: usage.cachedTokens },
      responseCache: { tokens: 0, cost: 0 },
      providerCachedTokens: 0,
    });

    // The turn's tokens were charged after it: the day's budget is spent, on every replica.
    const second = await turn(a.url, 'And a KV block?');
    expect(second.status).toBe(429);
    expect(second.body).toMatchObject({
      code: 'BudgetExceeded',
      budget: 'tokensPerDay',
      holder: 'key',
      used,
    });
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(0);

    // A key allowed another model may not run turns on the served one.
    const elsewhere = await api(`${a.url}/v1/admin/keys`, {
      key: tenantAdminKey,
      body: { name: 'other model', scopes: ['chat'], models: ['gpt-4o'] },
    });
    const refused = await turn(a.url, 'Hello', elsewhere.body.key);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: 'ModelNotAllowed', model, allowedModels: ['gpt-4o'] });
  });

  it('should keep the old secret working during the rotation grace period only', async () => {
    const created = await api(`${a.url}/v1/admin/keys`, { key: tenantAdminKey, body: { name: 'rotating' } });
    const oldKey = created.body.key;
    expect((await api(`${b.url}/v1/conversations`, { key: oldKey })).status).toBe(200);

    const rotated = await api(`${a.url}/v1/admin/keys/${created.body.id}/rotate`, {
      key: tenantAdminKey,
      body: { gracePeriodSeconds: 2 },
    });
    expect(rotated.status).toBe(200);
    expect(rotated.body.id).toBe(created.body.id);
    const newKey = rotated.body.key;
    expect(newKey).not.toBe(oldKey);
    const graceEnds = new Date(rotated.body.previousKeyExpiresAt).getTime();

    for (const app of [a, b]) {
      expect((await api(`${app.url}/v1/conversations`, { key: oldKey })).status).toBe(200);
      expect((await api(`${app.url}/v1/conversations`, { key: newKey })).status).toBe(200);
    }
    // The contract is the grace period itself: once it has passed, every replica refuses the old secret.
    await new Promise((r) => setTimeout(r, Math.max(0, graceEnds - Date.now()) + 20));
    for (const app of [a, b]) {
      const refused = await api(`${app.url}/v1/conversations`, { key: oldKey });
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="kvchat", error="invalid_token"');
      expect((await api(`${app.url}/v1/conversations`, { key: newKey })).status).toBe(200);
    }
  });

  it('should refuse a revoked key at once on the revoking replica and within API_KEY_CACHE_SECONDS on the other', async () => {
    const created = await api(`${a.url}/v1/admin/keys`, { key: tenantAdminKey, body: { name: 'doomed' } });
    const key = created.body.key;
    // Replica b has verified (and cached) the key.
    expect((await api(`${b.url}/v1/conversations`, { key })).status).toBe(200);

    const revoked = await api(`${a.url}/v1/admin/keys/${created.body.id}/revoke`, {
      key: tenantAdminKey,
      body: {},
    });
    expect(revoked.body).toMatchObject({ status: 'revoked' });
    const revokedAt = Date.now();
    expect((await api(`${a.url}/v1/conversations`, { key })).status).toBe(401);

    // The documented bound: API_KEY_CACHE_SECONDS after the revocation, no replica accepts the key.
    await new Promise((r) => setTimeout(r, Math.max(0, revokedAt + CACHE_SECONDS * 1000 - Date.now()) + 20));
    expect((await api(`${b.url}/v1/conversations`, { key })).status).toBe(401);
  });

  it('should check the key before reading the body, and say Bearer on every 401', async () => {
    const missing = await api(`${a.url}/v1/conversations`, { method: 'POST', body: '{}' });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="kvchat"');

    // Malformed JSON would be a 400 if the body were parsed first; a bad key makes it a 401.
    const nested = '['.repeat(200_000);
    const bad = await api(`${a.url}/v1/chat/completions`, { key: 'kvc_not-a-key', body: nested });
    expect(bad.status).toBe(401);
    expect(bad.body.error).toMatchObject({ code: 'invalid_api_key', kvchat: { code: 'Unauthorized' } });
    expect(bad.headers.get('www-authenticate')).toContain('Bearer');
  });
});
