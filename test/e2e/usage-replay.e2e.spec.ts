import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MikroORM } from '@mikro-orm/postgresql';
import { buildOrmOptions } from '../../src/database/mikro-orm.options';
import { ENTITIES } from '../../src/entities';
import { type ProcessFixture, setUpProcessFixture } from '../factories/process-fixture';
import { waitFor } from '../factories/processes';
import { api } from '../factories/test-app';

/** 50 MT-Bench-101 dialogues, their first three user turns (test/fixtures/conversations/README.md). */
const DIALOGUES: { id: number; turns: string[] }[] = readFileSync(
  join(__dirname, '..', 'fixtures', 'conversations', 'mtbench101.sample.jsonl'),
  'utf8',
)
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line) as { id: number; turns: string[] });

/** Booting two Node processes and 139 turns on a loaded 2-core machine. */
const TIMEOUT_MS = 300_000;
const PRICE = { input: 2, cachedInput: 0.5, output: 8 };

interface Reported {
  requestId: string;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  cost: number;
  costAvoided: number;
}

/**
 * The ledger billing reads equals what the turns told their clients: 50 real conversations replayed
 * through two kvchat processes (compiled, as `npm run build` does) on one PostgreSQL and one Redis; the
 * first is stopped with SIGTERM in the middle of the replay, the second finishes it. Every turn that
 * answered 201 has exactly one record, with its request id, and the totals of `GET /v1/usage?group=key`
 * are the sums of the turns' `assistantMessage.usage` and `savings`.
 */
describe('usage ledger after a replay with a SIGTERM in the middle (e2e, separate processes)', () => {
  let procs: ProcessFixture;
  const since = new Date(Date.now() - 3_600_000).toISOString();

  beforeAll(async () => {
    procs = await setUpProcessFixture({
      simulator: { timing: { timeScale: 0 }, replyTokens: { min: 8, max: 24 } },
      env: async (sim) => {
        const models = (await (await fetch(`${sim.baseURL}/models`)).json()) as { data: { id: string }[] };
        return {
          USAGE_PRICES: JSON.stringify({ [models.data[0].id]: PRICE }),
          // Small batches, a long flush interval: at the stop some records are still in memory, some queued.
          USAGE_BATCH_SIZE: '7',
          USAGE_FLUSH_MS: '5000',
        };
      },
    });
  }, TIMEOUT_MS);

  afterAll(async () => {
    await procs?.close();
  }, TIMEOUT_MS);

  const ledgerRequestIds = async (): Promise<string[]> => {
    const orm = await MikroORM.init(buildOrmOptions(procs.db.url, ENTITIES, { pool: { min: 0, max: 1 } }));
    try {
      const rows = await orm.em
        .getConnection()
        .execute<{ request_id: string }[]>(`select request_id from usage_records where endpoint = 'turn'`);
      return rows.map((r) => r.request_id);
    } finally {
      await orm.close(true);
    }
  };

  it(
    'should hold one record per answered turn, and totals equal to the turns’ reported usage',
    async () => {
      const first = await procs.start();
      const created = await procs.createKey(`replay-${randomUUID().slice(0, 8)}`, 'replay');
      expect(created.code).toBe(0);
      const key = created.key;

      const conversations = await Promise.all(
        DIALOGUES.map(async () => {
          const res = await api(`${first.url}/v1/conversations`, { key, body: {} });
          expect(res.status).toBe(201);
          return res.body.id as string;
        }),
      );
      const total = DIALOGUES.reduce((n, d) => n + d.turns.length, 0);
      const reported: Reported[] = [];
      /** Next turn index of each conversation. */
      const next = DIALOGUES.map(() => 0);

      /** Replays turns on `url` (4 conversations at a time) until done, or until a turn is not answered. */
      /** Set at SIGTERM: as a load balancer would, send no new turn to the stopping process. */
      let stopping = false;
      const replay = async (url: string): Promise<void> => {
        const queue = DIALOGUES.map((_, i) => i).filter((i) => next[i] < DIALOGUES[i].turns.length);
        let failed = false;
        const worker = async (): Promise<void> => {
          while (!failed && !stopping) {
            const i = queue.shift();
            if (i === undefined) return;
            for (; next[i] < DIALOGUES[i].turns.length && !failed && !stopping; next[i]++) {
              let res;
              try {
                res = await api(`${url}/v1/conversations/${conversations[i]}/turns`, {
                  key,
                  body: { content: DIALOGUES[i].turns[next[i]], maxTokens: 24 },
                });
              } catch {
                failed = true;
                break;
              }
              if (res.status !== 201) {
                failed = true;
                break;
              }
              const answer = res.body.assistantMessage;
              reported.push({
                requestId: res.headers.get('x-request-id')!,
                ...answer.usage,
                cost: answer.savings.cost,
                costAvoided: answer.savings.costAvoided,
              });
            }
          }
        };
        await Promise.all([worker(), worker(), worker(), worker()]);
      };

      // The first process answers about half of the turns, then gets SIGTERM while turns are in flight.
      const half = Math.floor(total / 2);
      const firstHalf = replay(first.url);
      await waitFor(
        'half of the turns',
        () => Promise.resolve(reported.length >= half ? true : undefined),
        120_000,
      );
      // SIGTERM while turns are in flight; they finish during the drain.
      stopping = true;
      const stopped = first.stop();
      await firstHalf;
      expect(await stopped).toBe(0);
      const answeredByFirst = reported.length;
      expect(answeredByFirst).toBeLessThan(total);

      // The second process finishes the replay (and writes what the queue still holds).
      const second = await procs.start();
      stopping = false;
      await replay(second.url);
      expect(reported.length).toBe(total);

      const range = `from=${since}&to=${new Date(Date.now() + 3_600_000).toISOString()}`;
      const report = await waitFor(
        'every record in the ledger',
        async () => {
          const res = await api(`${second.url}/v1/usage?${range}&group=key`, { key });
          expect(res.status).toBe(200);
          return res.body.totals.requests >= total ? res.body : undefined;
        },
        60_000,
      );

      // One record per answered turn, by request id: none lost at the stop, none twice.
      const ids = await ledgerRequestIds();
      expect(ids.sort()).toEqual(reported.map((r) => r.requestId).sort());

      const sum = (f: (r: Reported) => number): number => reported.reduce((s, r) => s + f(r), 0);
      const expected = {
        requests: total,
        promptTokens: sum((r) => r.promptTokens),
        cachedTokens: sum((r) => r.cachedTokens),
        completionTokens: sum((r) => r.completionTokens),
      };
      expect(report.totals).toMatchObject(expected);
      expect(report.totals.cost).toBeCloseTo(
        sum((r) => r.cost),
        9,
      );
      expect(report.totals.costAvoided).toBeCloseTo(
        sum((r) => r.costAvoided),
        9,
      );
      expect(report.totals.cost).toBeGreaterThan(0);
      expect(report.data).toHaveLength(1);
      expect(report.data[0]).toMatchObject({ keyName: 'replay', ...expected });

      // GET /v1/cache/stats sums the same savings for the tenant.
      const stats = await api(`${second.url}/v1/cache/stats`, { key });
      expect(stats.body.layers.savings).toMatchObject({
        ...expected,
        avoidedTokens: { exact: 0, semantic: 0, enginePrefix: expected.cachedTokens },
      });
      expect(stats.body.layers.savings.costAvoided).toBeCloseTo(
        sum((r) => r.costAvoided),
        9,
      );
    },
    TIMEOUT_MS,
  );
});
