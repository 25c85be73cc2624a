import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type RequestListener, type Server, type ServerResponse } from 'node:http';
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

/** A stand-in api on a loopback port. */
async function listen(handler: RequestListener): Promise<{ server: Server; address: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, address: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/**
 * Runs docker/nginx.conf in front of `upstreams` (at most `maxConns` requests each) on a free port; ready
 * once `GET /ok` through it answers 200 from one of them (not another server that took the port first).
 */
async function startNginx(
  upstreams: readonly string[],
  maxConns: number,
  dispatcher: Agent,
): Promise<{ nginx: ChildProcess; dir: string; base: string }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'kvchat-nginx-'));
  mkdirSync(join(dir, 'logs'));
  const template = readFileSync(join(REPO, 'docker', 'nginx.conf'), 'utf8');
  writeFileSync(join(dir, 'nginx.conf'), renderNginxConfig(template, upstreams, port, maxConns));
  const nginx = spawn(
    NGINX!,
    ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off; master_process off;'],
    { stdio: 'ignore' },
  );
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (nginx.exitCode !== null) throw new Error(`nginx exited with ${nginx.exitCode} (port ${port} taken?)`);
    try {
      const res = await request(`${base}/ok`, { dispatcher });
      const body = await res.body.text();
      if (res.statusCode === 200 && body.includes('"ok":true')) break;
    } catch (e) {
      if (i > 100) throw e;
    }
    await sleep(50);
  }
  return { nginx, dir, base };
}

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

    // Two requests per replica, so the test can fill it.
    ({ nginx, dir, base } = await startNginx([`127.0.0.1:${apiPort}`], 2, dispatcher));
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

(NGINX ? describe : describe.skip)(
  'docker/nginx.conf in front of two api replicas: conversation affinity',
  () => {
    const replicas: Array<{ server: Server; address: string }> = [];
    /** Responses a stand-in holds open (a path ending in `/hold`) until the test lets them go. */
    const held: ServerResponse[] = [];
    let nginx: ChildProcess;
    let dir: string;
    let base: string;
    const dispatcher = new Agent({ connections: 16 });

    beforeAll(async () => {
      for (const name of ['a', 'b'])
        replicas.push(
          await listen((req, res) => {
            res.writeHead(200, { 'content-type': 'application/json' });
            if (req.url?.endsWith('/hold')) {
              res.write(`{"replica":"${name}",`);
              held.push(res);
            } else res.end(JSON.stringify({ ok: true, replica: name }));
          }),
        );
      // One request at a time per replica, so the test can fill one.
      ({ nginx, dir, base } = await startNginx(
        replicas.map((r) => r.address),
        1,
        dispatcher,
      ));
    });

    afterAll(async () => {
      for (const res of held) res.end('"released":true}');
      nginx?.kill('SIGTERM');
      await dispatcher.close();
      await Promise.all(replicas.map((r) => new Promise<void>((resolve) => r.server.close(() => resolve()))));
      rmSync(dir, { recursive: true, force: true });
    });

    const replicaOf = async (path: string, method: 'GET' | 'POST' = 'POST'): Promise<string> => {
      const res = await request(`${base}${path}`, {
        method,
        body: method === 'POST' ? '{}' : undefined,
        dispatcher,
      });
      expect(res.statusCode).toBe(200);
      return ((await res.body.json()) as { replica: string }).replica;
    };

    it('sends every request on one conversation to one replica, and spreads conversations over both', async () => {
      const seen = new Map<string, Set<string>>();
      for (let turn = 0; turn < 3; turn++)
        for (let c = 0; c < 40; c++) {
          const conversation = `0192f3c4-0000-7000-8000-${String(c).padStart(12, '0')}`;
          const replica = await replicaOf(`/v1/conversations/${conversation}/turns`);
          // A read of the conversation goes where its turns go.
          expect(await replicaOf(`/v1/conversations/${conversation}/messages`, 'GET')).toBe(replica);
          seen.set(conversation, (seen.get(conversation) ?? new Set()).add(replica));
        }
      expect([...seen.values()].every((replicasOfOne) => replicasOfOne.size === 1)).toBe(true);
      const onA = [...seen.values()].filter((r) => r.has('a')).length;
      expect(onA).toBeGreaterThanOrEqual(5);
      expect(onA).toBeLessThanOrEqual(35);
    });

    it('spreads requests outside a conversation over both replicas', async () => {
      const replicasSeen = new Set<string>();
      for (let i = 0; i < 40; i++) {
        replicasSeen.add(await replicaOf('/v1/chat/completions'));
        replicasSeen.add(await replicaOf('/v1/conversations'));
      }
      expect([...replicasSeen].sort()).toEqual(['a', 'b']);
    });

    it("sends a conversation's turn to the other replica while its own is at max_conns, not to the shed page", async () => {
      const conversation = '0192f3c4-0000-7000-8000-0000000000ff';
      const home = await replicaOf(`/v1/conversations/${conversation}/turns`);
      const holding = await request(`${base}/v1/conversations/${conversation}/hold`, { dispatcher });
      expect(holding.statusCode).toBe(200);
      expect(held).toHaveLength(1);

      const elsewhere = await replicaOf(`/v1/conversations/${conversation}/turns`);
      expect(elsewhere).not.toBe(home);

      for (const res of held.splice(0)) res.end('"released":true}');
      expect(await holding.body.json()).toEqual({ replica: home, released: true });
      expect(await replicaOf(`/v1/conversations/${conversation}/turns`)).toBe(home);
    });
  },
);
