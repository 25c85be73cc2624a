import { api, startTestApp, type TestApp } from '../factories/test-app';

describe('rate limits (e2e)', () => {
  let sut: TestApp;

  beforeAll(async () => {
    sut = await startTestApp({ RATE_LIMIT_PER_MINUTE: '3' });
  });

  afterAll(async () => {
    await sut?.close();
  });

  it('should answer 429 with Retry-After once a key spends its budget, without touching other keys or health', async () => {
    for (let i = 0; i < 3; i++) {
      const ok = await api(`${sut.url}/v1/conversations`, { key: sut.keyA });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('x-ratelimit-limit-requests')).toBe('3');
      expect(ok.headers.get('x-ratelimit-remaining-requests')).toBe(String(2 - i));
    }
    const limited = await api(`${sut.url}/v1/conversations`, { key: sut.keyA });
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({
      status: 429,
      code: 'RateLimitExceeded',
      limit: 'requests',
      holder: 'key',
    });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.headers.get('x-ratelimit-remaining-requests')).toBe('0');

    expect((await api(`${sut.url}/v1/conversations`, { key: sut.keyB })).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await api(`${sut.url}/health/live`)).status).toBe(200);
  });
});
