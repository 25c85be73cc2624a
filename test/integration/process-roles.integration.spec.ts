import { randomUUID } from 'node:crypto';
import { MikroORM } from '@mikro-orm/postgresql';
import { buildOrmOptions } from '../../src/database/mikro-orm.options';
import { ENTITIES } from '../../src/entities';
import { type ProcessFixture, setUpProcessFixture } from '../factories/process-fixture';
import { type KvchatProcess, waitFor } from '../factories/processes';
import { api } from '../factories/test-app';

/**
 * One image, several roles, as the chart and compose run them: `migrate` once, then an `api` and a
 * `worker` process (separate OS processes, compiled as `npm run build` does) on one PostgreSQL and
 * one Redis. Jobs the api queues are done by the worker and by nobody else.
 */
/** Each test boots one or two Node processes: on a loaded 2-core machine that alone can take a minute. */
const PROCESS_TEST_TIMEOUT_MS = 240_000;

describe('process roles (separate processes)', () => {
  let procs: ProcessFixture;

  const start = (role: string, extra: Record<string, string> = {}) =>
    procs.start({ KVCHAT_ROLE: role, ...extra });
  const summaries = async (): Promise<number> => {
    const orm = await MikroORM.init(buildOrmOptions(procs.db.url, ENTITIES, { pool: { min: 0, max: 1 } }));
    try {
      const [row] = await orm.em
        .getConnection()
        .execute<{ n: string }[]>('select count(*) as n from conversation_summaries');
      return Number(row.n);
    } finally {
      await orm.close(true);
    }
  };
  const queue = async (p: KvchatProcess) =>
    (await api(`${p.url}/health/ready`)).body.details.queues.queues.summaries as {
      waiting: number;
      active: number;
    };

  beforeAll(async () => {
    procs = await setUpProcessFixture({
      simulator: { timing: { timeScale: 0 }, replyTokens: { min: 24, max: 48 } },
      env: () => ({
        DB_MIGRATE_ON_BOOT: 'false',
        API_KEY_CACHE_SECONDS: '0',
        // Small context window and the summary policy: a few turns queue a `summaries` job.
        INFERENCE_MAX_CONTEXT_TOKENS: '1024',
        CONTEXT_POLICY: 'summary',
        CONTEXT_SUMMARY_MAX_TOKENS: '64',
        CONTEXT_SUMMARY_WAIT_MS: '0',
      }),
    });
  }, PROCESS_TEST_TIMEOUT_MS);

  afterAll(async () => {
    await procs?.close();
  }, PROCESS_TEST_TIMEOUT_MS);

  it(
    'should apply the schema with `migrate`, once, and report pending migrations with --check',
    async () => {
      const before = await procs.migrate(['--check']);
      expect(before.code).toBe(1);
      expect(before.stdout).toMatch(/^pending migrations: Migration\d+/);

      const first = await procs.migrate();
      expect(first.code).toBe(0);
      expect(first.stdout).toMatch(/^applied migrations: Migration\d+, Migration\d+/);

      const again = await procs.migrate();
      expect([again.code, again.stdout.trim()]).toEqual([0, 'schema is current']);
      expect((await procs.migrate(['--check'])).code).toBe(0);
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it(
    'should queue a summary in the api process and have it done by the worker process only',
    async () => {
      // NODE_DEBUG=module: Node logs every module it loads, to show what the api never loads.
      const apiProcess = await start('api', { NODE_DEBUG: 'module' });
      const key = (await procs.createKey('roles')).key;
      const conv = await api(`${apiProcess.url}/v1/conversations`, { key, body: { title: 'roles' } });
      expect(conv.status).toBe(201);

      // Turns until the summary policy queues a job (the prompt passes the trigger share of the window).
      const queued = await waitFor('a queued summary job', async () => {
        const turn = await api(`${apiProcess.url}/v1/conversations/${conv.body.id}/turns`, {
          key,
          body: { content: `Tell me more about topic ${randomUUID()}, in detail please.`, maxTokens: 48 },
        });
        expect(turn.status).toBe(201);
        const q = await queue(apiProcess);
        return q.waiting > 0 ? q : undefined;
      });
      // The api queued it and does not take it: nothing active, nothing summarized.
      expect(queued.active).toBe(0);
      expect(await summaries()).toBe(0);

      const worker = await start('worker');
      await waitFor('the worker to write the summary', async () =>
        (await summaries()) > 0 ? true : undefined,
      );
      await waitFor('the queue to empty', async () => {
        const q = await queue(apiProcess);
        return q.waiting === 0 && q.active === 0 ? true : undefined;
      });
      expect(worker.output()).toMatch(/summarized conversation [0-9a-f-]+ through message \d+/);
      expect(apiProcess.output()).not.toMatch(/summarized conversation/);
      // Turns ran on the default (direct) graph runtime: LangGraph and LangChain were never loaded.
      expect(apiProcess.output()).toMatch(/node_modules\/@nestjs\/core\//);
      expect(apiProcess.output()).not.toMatch(/node_modules\/@langchain\//);
      // Its response cache is off (the fixture's default): the question tagger's model was never loaded.
      expect(apiProcess.output()).not.toMatch(/node_modules\/wink-eng-lite-web-model\//);

      // A worker serves probes and metrics only.
      expect((await api(`${worker.url}/health/ready`)).body.details.lifecycle).toEqual({
        status: 'up',
        role: 'worker',
      });
      expect((await fetch(`${worker.url}/metrics`)).status).toBe(200);
      const refused = await api(`${worker.url}/v1/conversations`, { key });
      expect(refused.status).toBe(404);
      expect(refused.body.detail).toBe('KVCHAT_ROLE=worker serves only /health and /metrics');
      expect((await fetch(`${worker.url}/docs`)).status).toBe(404);
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it(
    'should turn readiness 503 on SIGTERM while a turn is in flight, then close when the drain time runs out',
    async () => {
      const draining = await start('api', { SHUTDOWN_DRAIN_MS: '2000' });
      const key = (await procs.createKey('drain')).key;
      const conv = await api(`${draining.url}/v1/conversations`, { key, body: { title: 'drain' } });
      expect((await api(`${draining.url}/health/ready`)).status).toBe(200);

      procs.sim.engine.setFaults({ stallMs: 60_000 }); // the turn below outlives the drain
      try {
        const turn = api(`${draining.url}/v1/conversations/${conv.body.id}/turns`, {
          key,
          body: { content: 'A question that takes a while' },
        }).catch((e: unknown) => e);
        await waitFor('the turn to be in flight', async () => {
          const text = await (await fetch(`${draining.url}/metrics`)).text();
          return /^kvchat_in_flight_requests [1-9]/m.test(text) ? true : undefined;
        });

        draining.child.kill('SIGTERM');
        const notReady = await waitFor('readiness to turn 503', async () => {
          const res = await api(`${draining.url}/health/ready`);
          return res.status === 503 ? res.body : undefined;
        });
        expect(notReady.error.lifecycle).toMatchObject({ status: 'down', role: 'api', inFlight: 1 });
        expect((await api(`${draining.url}/health/live`)).status).toBe(200);

        expect(await draining.exited).toBe(0);
        expect(draining.output()).toContain('drain time ran out with 1 in flight: aborted them');
        // The aborted turn records its failure before the close (crash-safe-turns.integration.spec.ts checks what is stored).
        expect(draining.output()).toContain('aborted work recorded, closing');
        await turn;
      } finally {
        procs.sim.engine.setFaults({ stallMs: 0 });
      }
    },
    PROCESS_TEST_TIMEOUT_MS,
  );
});
