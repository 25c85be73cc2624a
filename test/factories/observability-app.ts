import { randomUUID } from 'node:crypto';
import { createParser } from 'eventsource-parser';
import { startBenchInstance, type BenchInstance } from '../../bench/harness';
import type { Env } from '../../src/config/config.loader';
import { deleteRedisPrefix } from './redis';
import { testDatabase } from './test-app';

/**
 * Boots the whole app for an observability test: the worker's database (see testDatabase), the local
 * Redis under a unique prefix (deleted by `close()` unless `env` names one), the in-process simulator
 * with no sleeping, port 0, one tenant key.
 */
export async function bootApp(env: Env = {}): Promise<BenchInstance> {
  const prefix = `kvchat-obs-${randomUUID()}:`;
  const app = await startBenchInstance(
    {
      ...testDatabase(env),
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      SIMULATOR_TIME_SCALE: '0',
      API_KEY_CACHE_SECONDS: '0',
      REDIS_KEY_PREFIX: prefix,
      ...env,
    },
    `obs-${randomUUID().slice(0, 8)}`,
  );
  return {
    ...app,
    close: async () => {
      await app.close();
      // A prefix the test chose may be shared with another instance it still needs: the test deletes it.
      if (env.REDIS_KEY_PREFIX === undefined) await deleteRedisPrefix(prefix);
    },
  };
}

/** A JSON request: status, headers and parsed body. */
export async function call(
  app: BenchInstance,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(`${app.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      authorization: `Bearer ${app.apiKey}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (metrics text)
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** Creates a conversation and returns its id. */
export async function newConversation(app: BenchInstance): Promise<string> {
  const res = await call(app, '/v1/conversations', { title: 'observability' });
  if (res.status !== 201) throw new Error(`create conversation: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id as string;
}

/** Posts a turn (JSON). */
export async function turn(
  app: BenchInstance,
  conversationId: string,
  content: string,
  extra: object = {},
  headers: Record<string, string> = {},
) {
  return call(app, `/v1/conversations/${conversationId}/turns`, { content, ...extra }, headers);
}

/** Posts a streamed turn and returns its SSE events (JSON data). */
export async function streamedTurn(
  app: BenchInstance,
  conversationId: string,
  content: string,
): Promise<{ status: number; events: { event: string; data: any }[] }> {
  const res = await fetch(`${app.url}/v1/conversations/${conversationId}/turns`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${app.apiKey}`,
      'content-type': 'application/json',
      accept: 'text/event-stream',
    },
    body: JSON.stringify({ content, stream: true }),
  });
  const events: { event: string; data: any }[] = [];
  const parser = createParser({
    onEvent: (m) => events.push({ event: m.event ?? 'message', data: JSON.parse(m.data) }),
  });
  parser.feed(await res.text());
  return { status: res.status, events };
}

/** One sample of a Prometheus exposition. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition into samples (enough for prom-client's output). */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include `labels`. */
export function metricSum(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

/** Scrapes `/metrics` (no API key: it is public). */
export async function scrape(app: BenchInstance): Promise<Sample[]> {
  const res = await fetch(`${app.url}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseMetrics(await res.text());
}
