import { randomUUID } from 'node:crypto';
import { MikroORM } from '@mikro-orm/postgresql';
import type { AgentGraph } from '../agents/agent-graph.service';
import type { AgentRegistry } from '../agents/agent-registry.service';
import type { AgentTurnSink, RouteDecision, TurnInput, TurnOutput } from '../agents/agents.types';
import type { AuthContext } from '../auth/api-key.service';
import { Tenant } from '../auth/tenant.entity';
import type { TenantSaltService } from '../auth/tenant-salt.service';
import { PayloadTooLarge } from '../common/domain-error';
import { toProblem } from '../common/problem.filter';
import { turnResult } from '../common/turn-events';
import { AppConfig } from '../config/app.config';
import { ProcessConfig } from '../config/process.config';
import { ContextLengthExceeded } from '../context/context.errors';
import { type EmbeddedPostgres, startEmbeddedPostgres } from '../database/embedded-postgres';
import { buildOrmOptions, migratorOf } from '../database/mikro-orm.options';
import { EngineUnavailable, RequestAborted } from '../inference/inference.errors';
import type { KnowledgeBasesService } from '../knowledge/knowledge-bases.service';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { NOOP_TURN_TRACE } from '../observability/turn-trace';
import type { TurnTelemetryService } from '../observability/turn-telemetry.service';
import { Conversation } from './conversation.entity';
import { ConversationBusy } from './conversation.errors';
import { ConversationNotFound, TurnInterrupted } from './conversation.errors';
import { type ConversationTurnEvent, ConversationsService } from './conversations.service';
import type { InFlightTurn, InFlightTurns } from './in-flight-turns';
import { Message } from './message.entity';
import type { TurnBilling } from './turn-billing.service';
import type { TurnLockService } from './turn-lock.service';
import { priceUsage } from '../usage/usage-pricing';
import { savingsOf } from '../usage/usage-savings';

/**
 * The agent graph as a script: records each TurnInput, emits a route, two tokens and the usage, and
 * answers (or throws `failure`). `pauseUntilAborted` makes it wait for the turn's signal instead.
 */
function scriptedGraph() {
  const inputs: TurnInput[] = [];
  const state = {
    route: { agent: 'assistant', score: 1, classifier: 'pinned' } as RouteDecision,
    failure: null as Error | null,
    pauseUntilAborted: false,
    output: {} as Partial<TurnOutput>,
  };
  const graph = {
    async run(input: TurnInput, sink: AgentTurnSink): Promise<TurnOutput> {
      inputs.push(input);
      sink.emit({ type: 'route', route: state.route });
      if (state.pauseUntilAborted) {
        await new Promise<void>((resolve) => sink.signal.addEventListener('abort', () => resolve()));
        throw new RequestAborted('The client disconnected; the engine request was aborted.');
      }
      if (state.failure) throw state.failure;
      sink.emit({ type: 'token', delta: 'Hello ' });
      sink.emit({ type: 'token', delta: 'there.' });
      const usage = { promptTokens: 50, completionTokens: 2, cachedTokens: 32 };
      sink.emit({ type: 'usage', usage });
      return {
        content: 'Hello there.',
        finishReason: 'stop',
        model: 'sim-model',
        replica: 'http://replica-0/v1',
        usage,
        timings: { ttftMs: 1.234, totalMs: 5, itlMs: 0.5 },
        route: state.route,
        templateVersion: 'global@1+assistant@1',
        cache: { cachedTokens: 32, prefixReuse: 0.64, response: { hit: false } },
        userPromptContent: `Date: 2026-11-28\n\n${input.userMessage}`,
        tokenCounts: { user: 7, assistant: 2, history: {} },
        ...state.output,
      };
    },
  };
  return { graph: graph as unknown as AgentGraph, inputs, state };
}

/** TurnLockService without Redis: runs the turn unless the client already left (as the real one does). */
const inProcessLocks = {
  withConversation: <T>(_id: string, routine: () => Promise<T>, signal?: AbortSignal): Promise<T> =>
    signal?.aborted ? Promise.reject(new RequestAborted('gone')) : routine(),
} as unknown as TurnLockService;

/** InFlightTurns in memory: the records of the turns running now, by id. */
function inMemoryInFlight() {
  const records = new Map<string, InFlightTurn>();
  const inFlight = {
    deadlineMs: 60_000,
    begin: (turn: InFlightTurn) => {
      records.set(turn.id, turn);
      return Promise.resolve();
    },
    end: (id: string) => void records.delete(id),
  } as unknown as InFlightTurns;
  return { inFlight, records };
}

const noTelemetry = {
  begin: () => ({ trace: NOOP_TURN_TRACE, succeed: () => undefined, fail: () => undefined }),
} as unknown as TurnTelemetryService;

/** Bills at no price, without a ledger or limits. */
const noBilling = {
  admit: () => Promise.resolve(),
  bill: (auth: AuthContext, turn: Parameters<TurnBilling['bill']>[1]) => {
    const row = priceUsage(
      {
        tenantId: auth.tenantId,
        requestId: turn.requestId,
        endpoint: 'turn',
        model: turn.output.model,
        ...turn.output.usage,
        latencyMs: turn.latencyMs,
      },
      null,
    );
    return Promise.resolve({ row, savings: savingsOf(row) });
  },
} as unknown as TurnBilling;

/** ConversationsService over an in-memory PGlite (migrated), with the graph, lock and telemetry faked. */
describe('ConversationsService', () => {
  let pg: EmbeddedPostgres;
  let orm: MikroORM;
  let auth: AuthContext;
  let statements: string[] = [];

  beforeAll(async () => {
    pg = await startEmbeddedPostgres('memory://', 0);
    // The entities this suite touches (the full list lives at the composition root, src/entities.ts).
    orm = await MikroORM.init(
      buildOrmOptions(pg.url, [Tenant, Conversation, Message], { pool: { min: 0, max: 2 } }),
    );
    await (await migratorOf(orm)).up();
    const logger = orm.config.getLogger();
    const logQuery = logger.logQuery.bind(logger);
    logger.logQuery = (context) => {
      statements.push(context.query ?? '');
      logQuery(context);
    };
    const em = orm.em.fork();
    const tenant = em.create(Tenant, { name: `conversations-${randomUUID()}` });
    await em.flush();
    auth = { tenantId: tenant.id } as AuthContext;
  });
  afterAll(async () => {
    await orm?.close(true);
    await pg?.close();
  });

  const build = () => {
    const { graph, inputs, state } = scriptedGraph();
    const { inFlight, records } = inMemoryInFlight();
    const lifecycle = new LifecycleService(Object.assign(new ProcessConfig(), { SHUTDOWN_DRAIN_MS: 0 }));
    const sut = new ConversationsService(
      orm.em,
      graph,
      inProcessLocks,
      { saltFor: (tenantId: string) => `salt-${tenantId}` } as unknown as TenantSaltService,
      Object.assign(new AppConfig(), { MAX_MESSAGE_CHARS: 1000 }),
      noTelemetry,
      { require: () => undefined } as unknown as AgentRegistry,
      {
        requireOwned: (_: string, ids: string[]) => Promise.resolve(ids),
      } as unknown as KnowledgeBasesService,
      inFlight,
      lifecycle,
      noBilling,
    );
    return { sut, inputs, state, records, lifecycle };
  };

  const collect = async (events: AsyncIterable<ConversationTurnEvent>): Promise<ConversationTurnEvent[]> => {
    const out: ConversationTurnEvent[] = [];
    for await (const e of events) out.push(e);
    return out;
  };

  const storedMessages = (conversationId: string): Promise<Message[]> =>
    orm.em.fork().find(Message, { conversationId }, { orderBy: { sequence: 'asc' } });

  it('should stream route, tokens and usage, then done with both stored messages', async () => {
    const { sut } = build();
    const conversation = await sut.create(auth, { title: 't' });
    const events = await collect(sut.turn(auth, conversation.id, { content: 'Hi!' }));

    expect(events.map((e) => e.type)).toEqual(['route', 'token', 'token', 'usage', 'done']);
    const done = events.at(-1);
    if (done?.type !== 'done') throw new Error('no done event');
    expect(done.result.userMessage).toMatchObject({
      sequence: 1,
      role: 'user',
      content: 'Hi!',
      tokenCount: 7,
    });
    expect(done.result.userMessage.promptContent).toBe('Date: 2026-11-28\n\nHi!');
    expect(done.result.assistantMessage).toMatchObject({
      sequence: 2,
      role: 'assistant',
      content: 'Hello there.',
      tokenCount: 2,
      route: { agent: 'assistant', classifier: 'pinned' },
    });
    const stored = await storedMessages(conversation.id);
    expect(stored.map((m) => [m.sequence, m.role, m.status])).toEqual([
      [1, 'user', 'complete'],
      [2, 'assistant', 'complete'],
    ]);
    expect((await sut.get(auth, conversation.id)).messageCount).toBe(2);
  });

  it('should read the conversation and its history in one statement and write the turn in one more', async () => {
    const { sut } = build();
    const conversation = await sut.create(auth, {});
    await turnResult(sut.turn(auth, conversation.id, { content: 'first' }));
    statements = [];
    const record = await turnResult(sut.turn(auth, conversation.id, { content: 'second' }));

    const normalised = statements.map((s) => s.replace(/\s+/g, ' ').toLowerCase());
    // One read (conversation + history); one write: both messages and the counters, no BEGIN/COMMIT.
    expect(normalised).toHaveLength(2);
    expect(normalised[0]).toMatch(/^select c\.\*/);
    expect(normalised[1]).toMatch(/^with inserted as \(insert into messages .* update conversations set/);
    // What the one statement stored reads back as the entities the turn returned.
    const [, , user, answer] = await storedMessages(conversation.id);
    expect(user).toMatchObject({ id: record.userMessage.id, sequence: 3, role: 'user', content: 'second' });
    expect(answer).toMatchObject({
      id: record.assistantMessage.id,
      sequence: 4,
      role: 'assistant',
      status: 'complete',
      usage: record.assistantMessage.usage,
      route: record.assistantMessage.route,
      timings: record.assistantMessage.timings,
    });
    const stored = await orm.em.fork().findOneOrFail(Conversation, { id: conversation.id });
    expect(stored.messageCount).toBe(4);
    expect(stored.lastTurnAt?.getTime()).toBe(record.conversation.lastTurnAt?.getTime());
  });

  it('should give the graph only the complete history after the last compaction point, with token counts', async () => {
    const { sut, inputs, state } = build();
    const conversation = await sut.create(auth, {});
    await turnResult(sut.turn(auth, conversation.id, { content: 'one' }));
    await turnResult(sut.turn(auth, conversation.id, { content: 'two' }));
    state.failure = new EngineUnavailable('down');
    await expect(turnResult(sut.turn(auth, conversation.id, { content: 'three' }))).rejects.toThrow('down');
    state.failure = null;
    // The window moves this turn: messages 1-2 are compacted away.
    state.output = { context: { droppedThroughSequence: 2, compactions: 1 } };
    await turnResult(sut.turn(auth, conversation.id, { content: 'four' }));
    state.output = {};
    await turnResult(sut.turn(auth, conversation.id, { content: 'five' }));

    expect(inputs[3].history.map((m) => m.sequence)).toEqual([1, 2, 3, 4]);
    expect(inputs[3].history.every((m) => m.tokenCount !== null)).toBe(true);
    expect(inputs[4].context).toEqual({ droppedThroughSequence: 2, compactions: 1 });
    // Message 5 failed (left out), 1-2 compacted away.
    expect(inputs[4].history.map((m) => m.sequence)).toEqual([3, 4, 6, 7]);
    expect(inputs[4].history[2].content).toBe('Date: 2026-11-28\n\nfour');
  });

  it('should store the fallback agent decision on the answer', async () => {
    const { sut, state } = build();
    state.route = {
      agent: 'assistant',
      score: 0.12,
      classifier: 'embedding',
      fallback: true,
      reason: 'below-floor',
    };
    const conversation = await sut.create(auth, {});
    const record = await turnResult(sut.turn(auth, conversation.id, { content: 'hmm' }));
    expect(record.assistantMessage.route).toMatchObject({ fallback: true, reason: 'below-floor' });
    const [, answer] = await storedMessages(conversation.id);
    expect(answer.route).toMatchObject({ agent: 'assistant', fallback: true });
  });

  it('should store the user message once as failed, no answer, and end the stream with the error', async () => {
    const { sut, state } = build();
    state.failure = new EngineUnavailable('no replica');
    const conversation = await sut.create(auth, {});
    const events = await collect(sut.turn(auth, conversation.id, { content: 'anyone?' }));

    const last = events.at(-1);
    expect(last?.type).toBe('error');
    expect(last?.type === 'error' && last.error).toBeInstanceOf(EngineUnavailable);
    const stored = await storedMessages(conversation.id);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({
      sequence: 1,
      role: 'user',
      status: 'failed',
      error: { code: 'EngineUnavailable' },
    });
    expect((await sut.get(auth, conversation.id)).messageCount).toBe(1);
  });

  it('should record an aborted turn as failed with RequestAborted', async () => {
    const { sut, state } = build();
    state.pauseUntilAborted = true;
    const conversation = await sut.create(auth, {});
    const controller = new AbortController();
    const events = sut.turn(auth, conversation.id, { content: 'long answer please' }, controller.signal);
    const first = await events.next();
    expect(first.value).toMatchObject({ type: 'route' });
    controller.abort();
    const rest = await collect({ [Symbol.asyncIterator]: () => events });
    expect(rest.at(-1)).toMatchObject({ type: 'error', error: expect.any(RequestAborted) as unknown });
    const stored = await storedMessages(conversation.id);
    expect(stored.map((m) => [m.status, m.error?.code])).toEqual([['failed', 'RequestAborted']]);
  });

  it('should reject an oversized message and a missing conversation without storing anything', async () => {
    const { sut, inputs } = build();
    const conversation = await sut.create(auth, {});
    await expect(
      turnResult(sut.turn(auth, conversation.id, { content: 'x'.repeat(1001) })),
    ).rejects.toBeInstanceOf(PayloadTooLarge);
    await expect(turnResult(sut.turn(auth, randomUUID(), { content: 'hi' }))).rejects.toBeInstanceOf(
      ConversationNotFound,
    );
    expect(inputs).toHaveLength(0);
    expect(await storedMessages(conversation.id)).toHaveLength(0);
  });

  it('should record the turn in flight while it runs, under its user message id, and remove the record once stored', async () => {
    const { sut, state, records } = build();
    state.pauseUntilAborted = true;
    const conversation = await sut.create(auth, {});
    const controller = new AbortController();
    const events = sut.turn(auth, conversation.id, { content: 'in flight' }, controller.signal);
    await events.next();
    expect([...records.values()]).toEqual([
      expect.objectContaining({
        tenantId: auth.tenantId,
        conversationId: conversation.id,
        content: 'in flight',
      }),
    ]);
    const [record] = [...records.values()];
    expect(record.deadline - record.receivedAt).toBe(60_000);
    controller.abort();
    await collect({ [Symbol.asyncIterator]: () => events });
    expect(records.size).toBe(0);
    const [stored] = await storedMessages(conversation.id);
    expect(stored.id).toBe(record.id);

    state.pauseUntilAborted = false;
    const done = await turnResult(sut.turn(auth, conversation.id, { content: 'answered' }));
    expect(records.size).toBe(0);
    expect(done.userMessage.status).toBe('complete');
  });

  it('should store nothing for a turn rejected before the engine (context length), and drop its record', async () => {
    const { sut, state, records } = build();
    state.failure = new ContextLengthExceeded('maxTokens 32768 leaves no room for the prompt');
    const conversation = await sut.create(auth, {});
    await expect(turnResult(sut.turn(auth, conversation.id, { content: 'too long' }))).rejects.toBeInstanceOf(
      ContextLengthExceeded,
    );
    expect(await storedMessages(conversation.id)).toHaveLength(0);
    expect(records.size).toBe(0);
    expect((await orm.em.fork().findOneOrFail(Conversation, conversation.id)).messageCount).toBe(0);
  });

  it('should abort a running turn when the drain time runs out and store it failed with reason shutdown', async () => {
    const { sut, state, records, lifecycle } = build();
    state.pauseUntilAborted = true;
    const conversation = await sut.create(auth, {});
    const events = sut.turn(auth, conversation.id, { content: 'still running at shutdown' });
    await events.next();
    lifecycle.beginDrain('SIGTERM'); // SHUTDOWN_DRAIN_MS=0: the drain time runs out at once
    const rest = await collect({ [Symbol.asyncIterator]: () => events });
    expect(rest.at(-1)).toMatchObject({ type: 'error', error: expect.any(TurnInterrupted) as unknown });
    const stored = await storedMessages(conversation.id);
    expect(stored.map((m) => [m.status, m.error?.code, m.error?.reason])).toEqual([
      ['failed', 'TurnInterrupted', 'shutdown'],
    ]);
    expect(records.size).toBe(0);
  });

  it('should count a history message stored without a token count once, when the turn measured it', async () => {
    const { sut, state } = build();
    const conversation = await sut.create(auth, {});
    await turnResult(sut.turn(auth, conversation.id, { content: 'one' }));
    await orm.em
      .fork()
      .nativeUpdate(Message, { conversationId: conversation.id, sequence: 1 }, { tokenCount: null });
    state.output = { tokenCounts: { user: 3, assistant: 2, history: { 1: 11 } } };
    await turnResult(sut.turn(auth, conversation.id, { content: 'two' }));
    const stored = await storedMessages(conversation.id);
    expect(stored[0].tokenCount).toBe(11);
    expect(await orm.em.fork().count(Conversation, { id: conversation.id, messageCount: 4 })).toBe(1);
  });

  it('should store nothing and answer a retryable ConversationBusy when another turn took the sequence', async () => {
    const { sut } = build();
    const conversation = await sut.create(auth, {});
    await turnResult(sut.turn(auth, conversation.id, { content: 'one' }));
    // Another process, having lost no lock of its own, stored sequence 3 without this process seeing it.
    const em = orm.em.fork();
    em.create(Message, {
      tenantId: auth.tenantId,
      conversationId: conversation.id,
      sequence: 3,
      role: 'user',
      content: 'elsewhere',
    });
    await em.flush();

    const outcome = turnResult(sut.turn(auth, conversation.id, { content: 'two' }));
    await expect(outcome).rejects.toBeInstanceOf(ConversationBusy);
    const problem = toProblem(await outcome.catch((e: unknown) => e), '/x', 'r');
    expect(problem).toMatchObject({ status: 409, retryAfterSeconds: 1 });
    const stored = await storedMessages(conversation.id);
    expect(stored.map((m) => m.content)).toEqual(['one', expect.any(String), 'elsewhere']);
    expect(await orm.em.fork().count(Conversation, { id: conversation.id, messageCount: 2 })).toBe(1);
  });
});
