import { type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { freePort, startOwnRedis } from '../factories/redis';
import { api, startTestApp, type TestApp } from '../factories/test-app';

describe('rate limiter when its Redis fails (e2e)', () => {
  describe('failing open (the default)', () => {
    let redis: { url: string; process: ChildProcess };
    let sut: TestApp;

    beforeAll(async () => {
      redis = await startOwnRedis();
      sut = await startTestApp({
        RATE_LIMIT_REDIS_URL: redis.url,
        RATE_LIMIT_PER_MINUTE: '2',
        RATE_LIMIT_IP_PER_MINUTE: '3',
      });
    });

    afterAll(async () => {
      await sut?.close();
      if (redis?.process.exitCode === null) redis.process.kill('SIGKILL');
    });

    it('should limit per client IP for requests without a valid key', async () => {
      for (let i = 0; i < 3; i++) {
        expect((await api(`${sut.url}/v1/conversations`, { key: 'kvc_wrong' })).status).toBe(401);
      }
      const limited = await api(`${sut.url}/v1/conversations`, { key: 'kvc_wrong' });
      expect(limited.status).toBe(429);
      expect(limited.body).toMatchObject({ code: 'RateLimitExceeded', holder: 'ip' });
      // Probes are never counted against the address.
      expect((await api(`${sut.url}/health/live`)).status).toBe(200);
    });

    it('should limit while its Redis answers, then let requests through unlimited once it is gone, never with a 500', async () => {
      expect((await api(`${sut.url}/v1/conversations`, { key: sut.keyA })).status).toBe(200);
      expect((await api(`${sut.url}/v1/conversations`, { key: sut.keyA })).status).toBe(200);
      expect((await api(`${sut.url}/v1/conversations`, { key: sut.keyA })).status).toBe(429);

      redis.process.kill('SIGKILL');
      await once(redis.process, 'exit');

      for (let i = 0; i < 5; i++) {
        const read = await api(`${sut.url}/v1/conversations`, { key: sut.keyA });
        expect(read.status).toBe(200);
        expect(read.headers.get('x-ratelimit-limit-requests')).toBeNull();
      }
      const write = await api(`${sut.url}/v1/conversations`, {
        key: sut.keyA,
        body: { title: 'still works' },
      });
      expect(write.status).toBe(201);
      const metrics = await api(`${sut.url}/metrics`);
      expect(String(metrics.body)).toMatch(/kvchat_rate_limiter_failures_total\{outcome="open"\} [1-9]/);
    });
  });

  describe('failing closed (RATE_LIMIT_FAIL_OPEN=false)', () => {
    let sut: TestApp;

    beforeAll(async () => {
      sut = await startTestApp({
        RATE_LIMIT_REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
        RATE_LIMIT_PER_MINUTE: '100',
        RATE_LIMIT_FAIL_OPEN: 'false',
      });
    });

    afterAll(async () => {
      await sut?.close();
    });

    it('should answer 503 naming the rate limiter with Retry-After, fast, when its Redis is unreachable', async () => {
      const res = await api(`${sut.url}/v1/conversations`, { key: sut.keyA });
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ code: 'RateLimiterUnavailable', dependency: 'redis' });
      expect(res.headers.get('retry-after')).toBe('1');
      // Probes never touch the limiter.
      expect((await api(`${sut.url}/health/live`)).status).toBe(200);
    });
  });
});
