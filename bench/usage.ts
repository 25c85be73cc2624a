import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { EntityManager } from '@mikro-orm/postgresql';
import { getQueueToken } from '@nestjs/bull';
import type { Queue } from 'bull';
import { SingleBar } from 'cli-progress';
import { Command } from 'commander';
import Redis from 'ioredis';
import { createApp } from '../src/app.factory';
import { ApiKeyService } from '../src/auth/api-key.service';
import { mulberry32 } from '../src/common/prng';
import { UsageLedgerRepository } from '../src/usage/usage-ledger.repository';
import { UsageRecorder } from '../src/usage/usage-recorder.service';
import { UsageMetrics } from '../src/usage/usage.metrics';
import { USAGE_QUEUE } from '../src/usage/usage.queue';
import type { UsageEndpoint } from '../src/usage/usage.types';
import { quantile, round } from './harness';
import { createScratchDatabase } from './scratch-database';

interface Options {
  records: number;
  tenants: number;
  keysPerTenant: number;
  models: number;
  queries: number;
  tail: number;
  postgresUrl: string;
  redisUrl: string;
  out: string;
}

const MONTH_START = Date.UTC(2026, 9, 1);
const MONTH_END = Date.UTC(2026, 10, 1);
const ENDPOINTS: UsageEndpoint[] = ['turn', 'chat.completions', 'embeddings', 'ingestion'];

/**
 * `npm run bench:usage`: N synthetic usage records (default 1,000,000) through UsageRecorder → the
 * `usage` Bull queue → the batch writer → PostgreSQL, then `GET /v1/usage` for a month grouped by day.
 * Runs on a scratch database of the local PostgreSQL server (created and dropped) and its own Redis
 * key prefix (deleted). Prints records/s and the query's p50/p95/p99, with CPU ms next to wall times.
 */
async function main(): Promise<void> {
  const opts = new Command('bench:usage')
    .option('--records <n>', 'records to ingest', (v) => parseInt(v, 10), 1_000_000)
    .option('--tenants <n>', 'tenants', (v) => parseInt(v, 10), 20)
    .option('--keys-per-tenant <n>', 'API keys per tenant', (v) => parseInt(v, 10), 10)
    .option('--models <n>', 'models', (v) => parseInt(v, 10), 4)
    .option('--queries <n>', 'GET /v1/usage requests per query shape', (v) => parseInt(v, 10), 200)
    .option(
      '--tail <n>',
      'records ingested after the rollup (queries read rollup + tail)',
      (v) => parseInt(v, 10),
      10_000,
    )
    .option(
      '--postgres-url <url>',
      'PostgreSQL server for the scratch database',
      'postgres://postgres@127.0.0.1:5432/postgres',
    )
    .option('--redis-url <url>', 'Redis (a fresh key prefix is used and deleted)', 'redis://127.0.0.1:6379')
    .option('--out <json>', 'report path', 'bench/reports/usage.json')
    .parse()
    .opts<Options>();

  const scratch = await createScratchDatabase(
    `kvchat_bench_usage_${randomBytes(5).toString('hex')}`,
    opts.postgresUrl,
  );
  const prefix = `kvchat-bench-usage-${process.pid}-${Date.now()}:`;
  const running = await createApp(
    {
      DATA_DIR: 'memory://',
      EMBEDDED_DB_PORT: '0',
      LOG_LEVEL: 'warn',
      LOG_FORMAT: 'json',
      DATABASE_URL: scratch.url,
      REDIS_URL: opts.redisUrl,
      REDIS_KEY_PREFIX: prefix,
      USAGE_PRICES: JSON.stringify(
        Object.fromEntries(
          Array.from({ length: opts.models }, (_, i) => [
            `model-${i}`,
            { input: 1 + i, cachedInput: 0.1, output: 4 + i },
          ]),
        ),
      ),
    },
    { port: 0, host: '127.0.0.1' },
  );
  try {
    const keys = running.app.get(ApiKeyService);
    const recorder = running.app.get(UsageRecorder);
    const queue = running.app.get<Queue>(getQueueToken(USAGE_QUEUE));
    const connection = running.app.get(EntityManager).getConnection();
    const tenants: { id: string; key: string; keyIds: string[] }[] = [];
    for (let t = 0; t < opts.tenants; t++) {
      const first = await keys.create(`bench-tenant-${t}`, { name: 'k0' });
      const keyIds = [first.keyId];
      for (let k = 1; k < opts.keysPerTenant; k++)
        keyIds.push((await keys.create(`bench-tenant-${t}`, { name: `k${k}` })).keyId);
      tenants.push({ id: first.tenantId, key: first.key, keyIds });
    }
    const platformKey = (await keys.create('bench-ops', { admin: true })).key;

    const random = mulberry32(42);
    let seq = 0;
    const recordOne = (): void => {
      const tenant = tenants[Math.floor(random() * tenants.length)];
      const hit = random() < 0.2;
      const prompt = hit ? 0 : 200 + Math.floor(random() * 3000);
      recorder.record({
        occurredAt: new Date(MONTH_START + Math.floor(random() * (MONTH_END - MONTH_START))),
        tenantId: tenant.id,
        keyId: tenant.keyIds[Math.floor(random() * tenant.keyIds.length)],
        requestId: `bench-${seq++}`,
        conversationId: null,
        endpoint: ENDPOINTS[Math.floor(random() * ENDPOINTS.length)],
        model: `model-${Math.floor(random() * opts.models)}`,
        provider: hit ? 'cache' : 'vllm',
        deployment: hit ? null : 'replica-0',
        promptTokens: prompt,
        cachedTokens: Math.floor(prompt * random()),
        completionTokens: hit ? 0 : 20 + Math.floor(random() * 400),
        cacheLayer: hit ? (random() < 0.5 ? 'exact' : 'semantic') : undefined,
        replaced: hit ? { promptTokens: 1200, completionTokens: 200 } : null,
        latencyMs: 50 + Math.floor(random() * 2000),
        ttftMs: 20 + Math.floor(random() * 300),
      });
    };
    // Progress from the writer's own counter (this process writes): polling count(*) over a growing
    // table every second made PostgreSQL scan up to a million rows beside the inserts it was timing.
    const metrics = running.app.get(UsageMetrics);
    const storedCount = (): Promise<number> => Promise.resolve(metrics.writtenTotal);
    const countedRows = async (): Promise<number> =>
      Number(
        (await connection.execute<{ n: string }[]>('select count(*)::text as n from usage_records'))[0].n,
      );

    /** Records `n` through the queue, holding the producer back while the backlog is deep, and waits until stored. */
    const ingest = async (n: number, target: number): Promise<{ seconds: number; cpuMs: number }> => {
      const bar = new SingleBar({
        format: 'usage [{bar}] {value}/{total} stored | {rate} rec/s',
        hideCursor: true,
      });
      bar.start(target, await storedCount(), { rate: 0 });
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      let made = 0;
      let stored = 0;
      let lastPoll = 0;
      while (stored < target) {
        if (made < n && (await queue.getWaitingCount()) < 40 && recorder.pending < 20_000) {
          const chunk = Math.min(5000, n - made);
          for (let i = 0; i < chunk; i++) recordOne();
          made += chunk;
        } else {
          await new Promise((r) => setTimeout(r, 20));
        }
        if (performance.now() - lastPoll > 1000 || made >= n) {
          lastPoll = performance.now();
          stored = await storedCount();
          bar.update(stored, { rate: Math.round(stored / ((performance.now() - t0) / 1000)) });
          if (made >= n && stored < target) await new Promise((r) => setTimeout(r, 100));
        }
      }
      bar.stop();
      const cpu = process.cpuUsage(cpu0);
      return { seconds: (performance.now() - t0) / 1000, cpuMs: (cpu.user + cpu.system) / 1000 };
    };

    process.stderr.write(
      `bench:usage: ${opts.records} records, ${opts.tenants} tenants x ${opts.keysPerTenant} keys, ${opts.models} models, October 2026\n`,
    );
    const ingested = await ingest(opts.records, opts.records);
    const rows = await countedRows();
    if (rows !== opts.records) throw new Error(`the ledger holds ${rows} records, expected ${opts.records}`);
    const rollupT0 = performance.now();
    const rolled = await running.app.get(UsageLedgerRepository).rollup();
    const rollupMs = performance.now() - rollupT0;
    const tail = await ingest(opts.tail, opts.records + opts.tail);

    const url = `${running.url}/v1/usage?from=${new Date(MONTH_START).toISOString()}&to=${new Date(MONTH_END).toISOString()}&group=day`;
    const measure = async (
      key: string,
    ): Promise<{ p50: number; p95: number; p99: number; cpuMsPerQuery: number; days: number }> => {
      const times: number[] = [];
      let days = 0;
      const cpu0 = process.cpuUsage();
      for (let i = 0; i < opts.queries; i++) {
        const t0 = performance.now();
        const res = await fetch(url, { headers: { authorization: `Bearer ${key}` } });
        const body = (await res.json()) as { data: unknown[] };
        times.push(performance.now() - t0);
        if (res.status !== 200) throw new Error(`GET /v1/usage answered ${res.status}`);
        days = body.data.length;
      }
      const cpu = process.cpuUsage(cpu0);
      return {
        p50: round(quantile(times, 0.5)),
        p95: round(quantile(times, 0.95)),
        p99: round(quantile(times, 0.99)),
        cpuMsPerQuery: round((cpu.user + cpu.system) / 1000 / opts.queries),
        days,
      };
    };
    const tenantQuery = await measure(tenants[0].key);
    const platformQuery = await measure(platformKey);

    const summary = {
      recordsPerSecond: Math.round(opts.records / ingested.seconds),
      usageQueryP95Ms: tenantQuery.p95,
    };
    const report = {
      summary,
      records: opts.records,
      ingest: {
        seconds: round(ingested.seconds),
        recordsPerSecond: summary.recordsPerSecond,
        cpuMsPer1000Records: round((ingested.cpuMs / opts.records) * 1000),
      },
      rollup: { ms: round(rollupMs), dayRows: rolled.folded },
      tail: { records: opts.tail, seconds: round(tail.seconds) },
      query: { tenantMonthByDay: tenantQuery, allTenantsMonthByDay: platformQuery },
      machine: { note: 'writer and producer in one process (role all); shared machine, see cpu figures' },
    };
    process.stdout.write(
      [
        '',
        `ingest   ${opts.records} records in ${report.ingest.seconds} s = ${summary.recordsPerSecond} records/s ` +
          `(${report.ingest.cpuMsPer1000Records} CPU ms per 1000 records, producer + queue + writer)`,
        `rollup   ${rolled.folded} day rows in ${report.rollup.ms} ms; then ${opts.tail} more records left unrolled`,
        `GET /v1/usage month by day, one tenant:  p50 ${tenantQuery.p50} ms  p95 ${tenantQuery.p95} ms  p99 ${tenantQuery.p99} ms  (${tenantQuery.cpuMsPerQuery} CPU ms/query, ${tenantQuery.days} days)`,
        `GET /v1/usage month by day, all tenants: p50 ${platformQuery.p50} ms  p95 ${platformQuery.p95} ms  p99 ${platformQuery.p99} ms  (${platformQuery.cpuMsPerQuery} CPU ms/query)`,
        `targets: >= 5000 records/s, p95 < 200 ms`,
        '',
      ].join('\n'),
    );
    mkdirSync(dirname(opts.out), { recursive: true });
    writeFileSync(opts.out, JSON.stringify(report, null, 2));
  } finally {
    await running.close();
    await scratch.drop();
    const redis = new Redis(opts.redisUrl);
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (found.length > 0) await redis.del(...found);
    } while (cursor !== '0');
    await redis.quit();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:usage failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
