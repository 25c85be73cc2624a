import { randomUUID } from 'node:crypto';
import { EntityManager } from '@mikro-orm/postgresql';
import { parse } from 'csv-parse/sync';
import { UsageLedgerRepository } from '../../src/usage/usage-ledger.repository';
import { UsageRecorder } from '../../src/usage/usage-recorder.service';
import type { UsageInput, UsageRow } from '../../src/usage/usage.types';
import { createScratchDatabase, type ScratchDatabase } from '../factories/postgres';
import { deleteRedisPrefix } from '../factories/redis';
import { api, startTestApp, type TestApp } from '../factories/test-app';

const PRICES = {
  'model-a': { input: 3, cachedInput: 0.3, output: 15 },
  'model-b': { input: 0.5, output: 1.5 },
};
const DAY = 86_400_000;
/** Three whole UTC days, well in the past, so "now" never splits them. */
const DAY0 = Date.UTC(2026, 9, 10);

async function storedCount(app: TestApp): Promise<number> {
  const [row] = await app.running.app
    .get(EntityManager)
    .getConnection()
    .execute<{ n: string }[]>('select count(*)::text as n from usage_records');
  return Number(row.n);
}

/** Polls until `n` records are stored (the queue's writer runs asynchronously). */
async function waitForStored(app: TestApp, n: number, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let count = await storedCount(app);
  while (count < n && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    count = await storedCount(app);
  }
  return count;
}

function sums(rows: UsageRow[]) {
  return {
    requests: rows.length,
    promptTokens: rows.reduce((s, r) => s + r.promptTokens, 0),
    cachedTokens: rows.reduce((s, r) => s + r.cachedTokens, 0),
    completionTokens: rows.reduce((s, r) => s + r.completionTokens, 0),
    cost: rows.reduce((s, r) => s + r.cost, 0),
    costAvoided: rows.reduce((s, r) => s + r.costAvoided, 0),
  };
}

function expectCounters(actual: any, expected: ReturnType<typeof sums>): void {
  const { cost, costAvoided, ...tokens } = expected;
  expect(actual).toMatchObject(tokens);
  expect(actual.cost).toBeCloseTo(cost, 8);
  expect(actual.costAvoided).toBeCloseTo(costAvoided, 8);
}

describe('usage ledger (e2e)', () => {
  let db: ScratchDatabase;
  let sut: TestApp;
  let recorder: UsageRecorder;
  let platformKey: string;
  let keyA2: { id: string; key: string };
  let keyAId: string;
  const recorded: UsageRow[] = [];

  /** Synthetic requests of tenant A (two keys, two models, two endpoints, all cache layers) and tenant B. */
  function synthetic(n: number, start: number): UsageInput[] {
    return Array.from({ length: n }, (_, i) => {
      const tenantB = i % 7 === 0;
      const layer = i % 5 === 0 ? 'exact' : i % 11 === 0 ? 'semantic' : undefined;
      const hit = layer !== undefined;
      return {
        occurredAt: new Date(start + ((i * 7_777_777) % (3 * DAY))),
        tenantId: tenantB ? sut.tenantB : sut.tenantA,
        keyId: tenantB ? null : i % 2 === 0 ? keyAId : keyA2.id,
        requestId: `req-${i}`,
        conversationId: i % 3 === 0 ? randomUUID() : null,
        endpoint: i % 4 === 0 ? 'chat.completions' : 'turn',
        model: i % 3 === 0 ? 'model-b' : 'model-a',
        provider: hit ? 'cache' : 'vllm',
        promptTokens: hit ? 0 : 100 + (i % 50),
        cachedTokens: hit ? 0 : (i % 4) * 16,
        completionTokens: hit ? 0 : 20 + (i % 13),
        cacheLayer: layer,
        replaced: hit ? { promptTokens: 120, completionTokens: 30 } : null,
        latencyMs: 50 + i,
        ttftMs: 10,
      };
    });
  }

  beforeAll(async () => {
    db = await createScratchDatabase();
    sut = await startTestApp({
      DATABASE_URL: db.url,
      USAGE_PRICES: JSON.stringify(PRICES),
      USAGE_BATCH_SIZE: '40',
      USAGE_FLUSH_MS: '20',
    });
    recorder = sut.running.app.get(UsageRecorder);
    keyAId = (await sut.keys.verify(sut.keyA)).keyId;
    const created = await sut.keys.create((await sut.keys.verify(sut.keyA)).tenantName, {
      name: 'second key',
    });
    keyA2 = { id: created.keyId, key: created.key };
    platformKey = (await sut.keys.create(`ops-${randomUUID().slice(0, 8)}`, { admin: true })).key;
    for (const input of synthetic(700, DAY0)) recorded.push(recorder.record(input));
    expect(await waitForStored(sut, 700)).toBe(700);
  });

  afterAll(async () => {
    await sut?.close();
    await db?.drop();
  });

  const range = `from=${new Date(DAY0).toISOString()}&to=${new Date(DAY0 + 3 * DAY).toISOString()}`;
  const ofA = () => recorded.filter((r) => r.tenantId === sut.tenantA);

  it('should price records from the configured prices, a hit as the miss it replaced', () => {
    const miss = recorded.find((r) => r.model === 'model-a' && r.cacheLayer === 'engine-prefix')!;
    const p = PRICES['model-a'];
    expect(miss.cost).toBeCloseTo(
      ((miss.promptTokens - miss.cachedTokens) * p.input +
        miss.cachedTokens * p.cachedInput +
        miss.completionTokens * p.output) /
        1e6,
      9,
    );
    expect(miss.avoidedCostPrefix).toBeCloseTo((miss.cachedTokens * (p.input - p.cachedInput)) / 1e6, 9);
    const hit = recorded.find((r) => r.model === 'model-a' && r.cacheLayer === 'exact')!;
    expect(hit).toMatchObject({ cost: 0, avoidedTokensExact: 150, promptTokens: 0 });
    expect(hit.avoidedCostExact).toBeCloseTo((120 * p.input + 30 * p.output) / 1e6, 9);
  });

  it("should sum a tenant's own records by day, exactly, in JSON and CSV", async () => {
    const res = await api(`${sut.url}/v1/usage?${range}&group=day`, { key: sut.keyA });
    expect(res.status).toBe(200);
    expectCounters(res.body.totals, sums(ofA()));
    expect(res.body.data.map((d: any) => d.day)).toEqual(['2026-10-10', '2026-10-11', '2026-10-12']);
    for (const row of res.body.data) {
      expectCounters(row, sums(ofA().filter((r) => r.occurredAt.slice(0, 10) === row.day)));
    }

    const csv = await fetch(`${sut.url}/v1/usage?${range}&group=day`, {
      headers: { authorization: `Bearer ${sut.keyA}`, accept: 'text/csv' },
    });
    expect(csv.headers.get('content-type')).toContain('text/csv');
    const rows = parse(await csv.text(), { columns: true }) as Record<string, string>[];
    expect(Object.keys(rows[0])).toEqual([
      'day',
      'requests',
      'promptTokens',
      'cachedTokens',
      'completionTokens',
      'cost',
      'costAvoided',
    ]);
    expect(rows.map((r) => ({ ...r, requests: Number(r.requests), cost: Number(r.cost) }))).toEqual(
      res.body.data.map((d: any) => ({
        ...d,
        promptTokens: String(d.promptTokens),
        cachedTokens: String(d.cachedTokens),
        completionTokens: String(d.completionTokens),
        costAvoided: String(d.costAvoided),
      })),
    );
  });

  it('should group by key (with names), model and endpoint, and filter by key and model', async () => {
    const byKey = await api(`${sut.url}/v1/usage?${range}&group=key`, { key: sut.keyA });
    const second = byKey.body.data.find((d: any) => d.keyId === keyA2.id);
    expect(second.keyName).toBe('second key');
    expectCounters(second, sums(ofA().filter((r) => r.keyId === keyA2.id)));

    const byModel = await api(`${sut.url}/v1/usage?${range}&group=model`, { key: sut.keyA });
    expect(byModel.body.data.map((d: any) => d.model)).toEqual(['model-a', 'model-b']);
    const byEndpoint = await api(`${sut.url}/v1/usage?${range}&group=endpoint&model=model-b&key=${keyAId}`, {
      key: sut.keyA,
    });
    const narrowed = ofA().filter((r) => r.model === 'model-b' && r.keyId === keyAId);
    expectCounters(byEndpoint.body.totals, sums(narrowed));
    expect(byEndpoint.body.data.map((d: any) => d.endpoint).sort()).toEqual(
      [...new Set(narrowed.map((r) => r.endpoint))].sort(),
    );
  });

  it("should show a tenant only its own usage, the platform admin everyone's, and need usage:read", async () => {
    const b = await api(`${sut.url}/v1/usage?${range}`, { key: sut.keyB });
    expectCounters(b.body.totals, sums(recorded.filter((r) => r.tenantId === sut.tenantB)));
    expect((await api(`${sut.url}/v1/usage?${range}&tenant=${sut.tenantB}`, { key: sut.keyA })).status).toBe(
      404,
    );
    const all = await api(`${sut.url}/v1/usage?${range}`, { key: platformKey });
    expectCounters(all.body.totals, sums(recorded));
    const onlyB = await api(`${sut.url}/v1/usage?${range}&tenant=${sut.tenantB}`, { key: platformKey });
    expect(onlyB.body.totals.requests).toBe(b.body.totals.requests);

    const chatOnly = await sut.keys.create((await sut.keys.verify(sut.keyA)).tenantName, {
      scopes: ['chat'],
    });
    const denied = await api(`${sut.url}/v1/usage`, { key: chatOnly.key });
    expect(denied.body).toMatchObject({ status: 403, code: 'ScopeMissing', missingScopes: ['usage:read'] });
  });

  it('should give the same exact figures after the daily rollup, with later records and partial days on top', async () => {
    const before = await api(`${sut.url}/v1/usage?${range}&group=day`, { key: platformKey });
    const rolled = await sut.running.app.get(UsageLedgerRepository).rollup();
    expect(rolled.folded).toBeGreaterThan(0);
    const after = await api(`${sut.url}/v1/usage?${range}&group=day`, { key: platformKey });
    expect(after.body).toEqual(before.body);

    for (const input of synthetic(60, DAY0 + DAY / 3)) recorded.push(recorder.record(input));
    expect(await waitForStored(sut, 760)).toBe(760);
    const mixed = await api(`${sut.url}/v1/usage?${range}&group=day`, { key: platformKey });
    const inDays = (from: number, to: number) =>
      recorded.filter((r) => Date.parse(r.occurredAt) >= from && Date.parse(r.occurredAt) < to);
    expectCounters(mixed.body.totals, sums(inDays(DAY0, DAY0 + 3 * DAY)));

    // A range that starts and ends mid-day reads those partial days from the records.
    const from = DAY0 + DAY / 2;
    const to = DAY0 + 2 * DAY + DAY / 4;
    const partial = await api(
      `${sut.url}/v1/usage?from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`,
      { key: platformKey },
    );
    expectCounters(partial.body.totals, sums(inDays(from, to)));
  });

  it('should count tokens and spend by model in Prometheus', async () => {
    const metrics = String((await api(`${sut.url}/metrics`)).body);
    const promptA = recorded.filter((r) => r.model === 'model-a').reduce((s, r) => s + r.promptTokens, 0);
    expect(metrics).toContain(`kvchat_usage_tokens_total{model="model-a",type="prompt"} ${promptA}`);
    const spendB = recorded.filter((r) => r.model === 'model-b').reduce((s, r) => s + r.cost, 0);
    const line = /kvchat_usage_cost_usd_total\{model="model-b"\} ([\d.e-]+)/.exec(metrics);
    expect(Number(line?.[1])).toBeCloseTo(spendB, 8);
  });
});

describe('usage ledger when the app stops mid-stream (e2e)', () => {
  let db: ScratchDatabase;
  const prefix = `kvchat-test-${randomUUID()}:`;

  beforeAll(async () => {
    db = await createScratchDatabase();
  });

  afterAll(async () => {
    await db?.drop();
    await deleteRedisPrefix(prefix);
  });

  it('should lose no record made before the stop: the next instance writes what the queue still holds', async () => {
    const env = {
      DATABASE_URL: db.url,
      REDIS_KEY_PREFIX: prefix,
      USAGE_BATCH_SIZE: '100',
      USAGE_FLUSH_MS: '50',
    };
    const first = await startTestApp(env);
    const recorder = first.running.app.get(UsageRecorder);
    const record = (i: number): void => {
      recorder.record({
        tenantId: first.tenantA,
        requestId: `stop-${i}`,
        endpoint: 'turn',
        model: 'model-a',
        promptTokens: 10,
        cachedTokens: 0,
        completionTokens: 1,
        latencyMs: 1,
      });
    };
    let made = 0;
    for (; made < 2000; made++) record(made);
    // The writer is busy: some batches are stored, others queued or in memory.
    await waitForStored(first, 1);
    for (; made < 6000; made++) {
      record(made);
      if (made % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    const storedAtStop = await storedCount(first);
    await first.close();
    expect(storedAtStop).toBeLessThan(made);

    const second = await startTestApp(env);
    try {
      expect(await waitForStored(second, made)).toBe(made);
      const [row] = await second.running.app
        .get(EntityManager)
        .getConnection()
        .execute<{ n: string }[]>(`select count(distinct request_id)::text as n from usage_records`);
      expect(Number(row.n)).toBe(made);
    } finally {
      await second.close();
    }
  });
});
