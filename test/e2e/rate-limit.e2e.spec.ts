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
      expect((await api(`${sut.url}/v1/conversations`, { key: sut.keyA })).status).toBe(200);
    }
    const limited = await api(`${sut.url}/v1/conversations`, { key: sut.keyA });
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ status: 429, code: 'TooManyRequests' });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);

    expect((await api(`${sut.url}/v1/conversations`, { key: sut.keyB })).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await api(`${sut.url}/health/live`)).status).toBe(200);
  });
});
