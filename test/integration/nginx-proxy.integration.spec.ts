import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { renderNginxConfig } from '../../bench/nginx-config';
import { freePort } from '../factories/redis';

/**
 * docker/nginx.conf, the gateway docker/compose.yaml puts in front of the api replicas, run by a real
 * nginx in front of a stand-in api: Server-Sent Events pass through as they are written, the api's own
 * answers (its 503s included) pass through unchanged, and past `max_conns` requests per replica nginx
 * sheds at once with kvchat's 503 `Overloaded` problem and `Retry-After` (docs/scaling.md, "Behind a proxy").
 *
 * Needs the nginx binary (Debian's `nginx-light`; .ci/run installs it). Without it the suite is skipped
 * and says so.
 */
const NGINX = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx'].find((path) => {
  try {
    execFileSync(path, ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});
const REPO = join(__dirname, '..', '..');

(NGINX ? describe : describe.skip)('docker/nginx.conf in front of the api', () => {
  let api: Server;
  let nginx: ChildProcess;
  let dir: string;
  let base: string;
  /** Responses the stand-in api holds open (`/hold`) until the test lets them go. */
  const held: ServerResponse[] = [];
  /** The request ids the stand-in api saw. */
  const requestIds: string[] = [];
  const dispatcher = new Agent({ connections: 16 });

  beforeAll(async () => {
    api = createServer((req, res) => {
      requestIds.push(String(req.headers['x-request-id'] ?? ''));
      if (req.url === '/hold') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('held');
        held.push(res);
      } else if (req.url === '/sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('event: token\ndata: {"delta":"a"}\n\n');
        setTimeout(() => res.end('event: turn\ndata: {}\n\n'), 400);
      } else if (req.url === '/shed') {
        res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '7' });
        res.end(JSON.stringify({ code: 'Overloaded', reason: 'queue_full', status: 503 }));
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      }
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    const apiPort = (api.address() as AddressInfo).port;

    const port = await freePort();

    dir = mkdtempSync(join(tmpdir(), 'kvchat-nginx-'));
    mkdirSync(join(dir, 'logs'));
    const template = readFileSync(join(REPO, 'docker', 'nginx.conf'), 'utf8');
    // Two requests per replica, so the test can fill it.
    writeFileSync(join(dir, 'nginx.conf'), renderNginxConfig(template, [`127.0.0.1:${apiPort}`], port, 2));
    nginx = spawn(
      NGINX!,
      ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off; master_process off;'],
      { stdio: 'ignore' },
    );
    base = `http://127.0.0.1:${port}`;
    // Ready once our nginx answers with our api's body (not another server that took the port first).
    for (let i = 0; ; i++) {
      if (nginx.exitCode !== null)
        throw new Error(`nginx exited with ${nginx.exitCode} (port ${port} taken?)`);
      try {
        const res = await request(`${base}/ok`, { dispatcher });
        if (res.statusCode === 200 && (await res.body.text()) === '{"ok":true}') break;
      } catch (e) {
        if (i > 100) throw e;
      }
      await sleep(50);
    }
  });

  afterAll(async () => {
    for (const res of held) res.end();
    nginx?.kill('SIGTERM');
    await dispatcher.close();
    await new Promise<void>((resolve) => api?.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes Server-Sent Events through as they are written, with a request id for the api', async () => {
    const started = performance.now();
    const res = await request(`${base}/sse`, { dispatcher });
    const arrivals: Array<{ at: number; text: string }> = [];
    for await (const chunk of res.body)
      arrivals.push({ at: performance.now() - started, text: String(chunk) });
    expect(res.statusCode).toBe(200);
    expect(arrivals.map((a) => a.text).join('')).toBe(
      'event: token\ndata: {"delta":"a"}\n\nevent: turn\ndata: {}\n\n',
    );
    // The first event arrived on its own, well before the api wrote the second one (400 ms later).
    expect(arrivals[0].text).toBe('event: token\ndata: {"delta":"a"}\n\n');
    expect(arrivals.at(-1)!.at - arrivals[0].at).toBeGreaterThan(250);
    expect(requestIds.at(-1)).toMatch(/^[0-9a-f]{32}$/);
  });

  it("passes the api's own 503 through unchanged", async () => {
    const res = await request(`${base}/shed`, { dispatcher });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('7');
    expect(await res.body.json()).toEqual({ code: 'Overloaded', reason: 'queue_full', status: 503 });
  });

  it('sheds at once with 503 Overloaded past max_conns, and serves again once a connection frees', async () => {
    const first = await request(`${base}/hold`, { dispatcher });
    const second = await request(`${base}/hold`, { dispatcher });
    expect([first.statusCode, second.statusCode]).toEqual([200, 200]);

    const started = performance.now();
    const shed = await request(`${base}/v1/conversations/x/turns`, {
      method: 'POST',
      body: '{}',
      dispatcher,
    });
    const tookMs = performance.now() - started;
    expect(shed.statusCode).toBe(503);
    expect(shed.headers['content-type']).toBe('application/problem+json');
    expect(shed.headers['retry-after']).toBe('1');
    const problem = (await shed.body.json()) as Record<string, unknown>;
    expect(problem).toMatchObject({
      type: 'https://kvchat.dev/problems/Overloaded',
      status: 503,
      code: 'Overloaded',
      reason: 'proxy_max_conns',
      instance: '/v1/conversations/x/turns',
    });
    expect(problem.requestId).toMatch(/^[0-9a-f]{32}$/);
    expect(tookMs).toBeLessThan(1000);

    for (const res of held.splice(0)) res.end();
    await Promise.all([first.body.text(), second.body.text()]);
    const again = await request(`${base}/ok`, { dispatcher });
    expect(again.statusCode).toBe(200);
    expect(await again.body.json()).toEqual({ ok: true });
  });
});
