import { MikroORM } from '@mikro-orm/postgresql';
import Redis from 'ioredis';
import { buildOrmOptions } from '../../src/database/mikro-orm.options';
import { ENTITIES } from '../../src/entities';
import { type ProcessFixture, setUpProcessFixture } from '../factories/process-fixture';
import { waitFor } from '../factories/processes';
import { postSse } from '../factories/sse';
import { api } from '../factories/test-app';

/**
 * Crash-safe turns with real kvchat processes (compiled as `npm run build` does) on a scratch
 * database and the local Redis under a fresh prefix, the engine simulator stalling before the first
 * token so that turns are in flight when the process is stopped:
 * - SIGTERM: new requests are refused, the drain time runs out, the running turns are aborted and
 *   stored `failed` with reason `shutdown`, the process exits, nothing is left in flight;
 * - SIGKILL: nothing reaches the database; the next process's sweeper stores the turn as a `failed`
 *   user message with reason `interrupted` once its deadline passes (prompts read only `complete`
 *   messages: ConversationsService spec), and the next turn follows it.
 */
const PROCESS_TEST_TIMEOUT_MS = 240_000;

interface Row {
  sequence: number;
  role: string;
  status: string;
  content: string;
  error: { code: string; reason?: string } | null;
}

describe('crash-safe turns (separate processes)', () => {
  let procs: ProcessFixture;
  let redis: Redis;
  let orm: MikroORM;
  let key: string;

  const start = (extra: Record<string, string> = {}) => procs.start(extra);
  const inFlight = (): Promise<number> => redis.zcard(`${procs.prefix}turns:in-flight`);
  const messages = async (conversationId: string): Promise<Row[]> =>
    orm.em
      .fork()
      .getConnection()
      .execute<
        Row[]
      >('select sequence, role, status, content, error from messages where conversation_id = ? order by sequence', [conversationId]);
  const conversation = async (url: string): Promise<string> => {
    const res = await api<{ id: string }>(`${url}/v1/conversations`, { key, body: { title: 'crash' } });
    expect(res.status).toBe(201);
    return res.body.id;
  };

  beforeAll(async () => {
    procs = await setUpProcessFixture({
      simulator: { timing: { timeScale: 0 }, replyTokens: { min: 8, max: 16 } },
      env: () => ({
        API_KEY_CACHE_SECONDS: '0',
        SHUTDOWN_DRAIN_MS: '1500',
        TURN_SWEEP_INTERVAL_SECONDS: '1',
      }),
    });
    const migrated = await procs.migrate();
    expect(migrated.code).toBe(0);
    key = (await procs.createKey('crash')).key;
    redis = new Redis('redis://127.0.0.1:6379');
    orm = await MikroORM.init(buildOrmOptions(procs.db.url, ENTITIES, { pool: { min: 0, max: 2 } }));
  }, PROCESS_TEST_TIMEOUT_MS);

  afterAll(async () => {
    await orm?.close(true);
    await redis?.quit();
    // SIGKILL: a process stopped mid-test may still hold stalled turns; no drain needed at teardown.
    await procs?.close('SIGKILL');
  }, PROCESS_TEST_TIMEOUT_MS);

  afterEach(() => {
    procs.sim.engine.setFaults({ stallMs: 0 });
  });

  it(
    'should refuse new requests on SIGTERM, abort the turns still running when the drain time runs out, store them failed (shutdown) and exit',
    async () => {
      const app = await start();
      const ids = await Promise.all([conversation(app.url), conversation(app.url), conversation(app.url)]);
      procs.sim.engine.setFaults({ stallMs: 60_000 });
      const streams = ids.map((id, i) =>
        postSse(`${app.url}/v1/conversations/${id}/turns`, key, { content: `shutdown ${i}`, maxTokens: 16 }),
      );
      await waitFor('3 turns in flight', async () => ((await inFlight()) === 3 ? true : undefined));

      const sentAt = Date.now();
      app.child.kill('SIGTERM');
      await waitFor('readiness 503', async () =>
        (await api(`${app.url}/health/ready`)).status === 503 ? true : undefined,
      );
      const refused = await api(`${app.url}/v1/conversations`, { key, body: { title: 'late' } });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');

      const results = await Promise.all(streams);
      expect(await app.exited).toBe(0);
      // Drain 1.5 s, then at most ABORT_GRACE_MS (3 s) to record the aborted turns and close.
      expect(Date.now() - sentAt).toBeLessThan(15_000);
      for (const r of results) {
        // Stalled before the first token: no SSE had started, so the answer is the problem itself.
        expect([r.status, JSON.parse(r.text)]).toEqual([
          503,
          expect.objectContaining({ code: 'TurnInterrupted', reason: 'shutdown' }),
        ]);
      }
      for (const [i, id] of ids.entries()) {
        expect(await messages(id)).toEqual([
          expect.objectContaining({
            sequence: 1,
            role: 'user',
            status: 'failed',
            content: `shutdown ${i}`,
            error: expect.objectContaining({ code: 'TurnInterrupted', reason: 'shutdown' }) as unknown,
          }),
        ]);
      }
      expect(await inFlight()).toBe(0);
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it(
    'should store a turn whose process was SIGKILLed as failed (interrupted) by the next process sweeper',
    async () => {
      const extra = { TURN_DEADLINE_MS: '10000' };
      const first = await start(extra);
      const id = await conversation(first.url);
      const answered = await api(`${first.url}/v1/conversations/${id}/turns`, {
        key,
        body: { content: 'first question', maxTokens: 16 },
      });
      expect(answered.status).toBe(201);
      procs.sim.engine.setFaults({ stallMs: 60_000 });
      const killedTurn = api(`${first.url}/v1/conversations/${id}/turns`, {
        key,
        body: { content: 'killed mid-turn', maxTokens: 16 },
      }).catch((e: unknown) => e);
      await waitFor('the turn in flight', async () => ((await inFlight()) === 1 ? true : undefined));
      first.child.kill('SIGKILL');
      await first.exited;
      await killedTurn;
      // Nothing of the killed turn reached the database: one write per turn, at its end.
      expect((await messages(id)).map((m) => m.sequence)).toEqual([1, 2]);
      procs.sim.engine.setFaults({ stallMs: 0 });

      const second = await start(extra);
      const swept = await waitFor(
        'the sweeper',
        async () => {
          const rows = await messages(id);
          return rows.length === 3 ? rows : undefined;
        },
        60_000,
      );
      expect(swept[2]).toMatchObject({
        sequence: 3,
        role: 'user',
        status: 'failed',
        content: 'killed mid-turn',
        error: { code: 'TurnInterrupted', reason: 'interrupted' },
      });
      expect(await inFlight()).toBe(0);

      const next = await api<{ userMessage: { sequence: number }; assistantMessage: { sequence: number } }>(
        `${second.url}/v1/conversations/${id}/turns`,
        { key, body: { content: 'after the crash', maxTokens: 16 } },
      );
      expect(next.status).toBe(201);
      expect([next.body.userMessage.sequence, next.body.assistantMessage.sequence]).toEqual([4, 5]);
    },
    PROCESS_TEST_TIMEOUT_MS,
  );
});
