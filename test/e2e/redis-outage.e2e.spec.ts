import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { startOwnRedis } from '../factories/redis';
import { api, startTestApp, type TestApp } from '../factories/test-app';

/**
 * The app on a Redis of this suite's own, which the suite stops and restarts (issue 10, item 1):
 * requests that need Redis answer a fast 503 naming it, reads that do not need it keep working,
 * and turns run again once Redis is back, without a restart.
 */
describe('Redis outage (e2e)', () => {
  let redis: { url: string; process: ChildProcess };
  let sut: TestApp;
  let conversationId: string;

  beforeAll(async () => {
    redis = await startOwnRedis();
    sut = await startTestApp({ REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '500' });
    conversationId = (await api(`${sut.url}/v1/conversations`, { key: sut.keyA, body: { title: 'outage' } }))
      .body.id as string;
  });

  afterAll(async () => {
    await sut?.close();
    if (redis?.process.exitCode === null) redis.process.kill('SIGKILL');
  });

  it('should answer a turn 503 naming Redis with Retry-After within the bound, leave no message, and recover', async () => {
    const port = new URL(redis.url).port;
    redis.process.kill('SIGKILL');
    await once(redis.process, 'exit');

    const started = performance.now();
    const down = await api(`${sut.url}/v1/conversations/${conversationId}/turns`, {
      key: sut.keyA,
      body: { content: 'Is anyone there?' },
    });
    const waitedMs = performance.now() - started;
    const read = await api(`${sut.url}/v1/conversations/${conversationId}`, { key: sut.keyA });

    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ code: 'DependencyUnavailable', dependency: 'redis' });
    expect(Number(down.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(waitedMs).toBeLessThan(2_000);
    expect(read.status).toBe(200);

    redis = await startOwnRedis(Number(port));
    let up = await api(`${sut.url}/v1/conversations/${conversationId}/turns`, {
      key: sut.keyA,
      body: { content: 'Hello again.' },
    });
    // ioredis reconnects in the background (every <= 2 s): the first request after the restart may still be refused.
    for (let i = 0; i < 20 && up.status === 503; i++) {
      await new Promise((r) => setTimeout(r, 250));
      up = await api(`${sut.url}/v1/conversations/${conversationId}/turns`, {
        key: sut.keyA,
        body: { content: 'Hello again.' },
      });
    }
    const messages = await api(`${sut.url}/v1/conversations/${conversationId}/messages`, { key: sut.keyA });

    expect(up.status).toBe(201);
    expect(messages.body.data.map((m: { content: string }) => m.content)).not.toContain('Is anyone there?');
  });
});
