import { randomUUID } from 'node:crypto';
import type { RequiredEntityData } from '@mikro-orm/core';
import { EntityManager } from '@mikro-orm/postgresql';
import { Injectable, Logger } from '@nestjs/common';
import type { AuthContext } from '../auth/api-key.service';
import { TenantSaltService } from '../auth/tenant-salt.service';
import { AgentGraph } from '../agents/agent-graph.service';
import { AgentRegistry } from '../agents/agent-registry.service';
import type { AgentTurnPayloads, AgentTurnSink } from '../agents/agents.types';
import type { CacheControl } from '../caching/response-cache.types';
import { DomainError, InvalidRequest, PayloadTooLarge } from '../common/domain-error';
import { PROBLEM_STATUSES } from '../common/problem-statuses';
import { KnowledgeBasesService } from '../knowledge/knowledge-bases.service';
import { KnowledgeBaseNotFound } from '../knowledge/knowledge.errors';
import {
  NEVER_ABORTED,
  runTurn,
  type TurnEvent,
  turnEventStream,
  type TurnProgressEvent,
} from '../common/turn-events';
import { AppConfig } from '../config/app.config';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { RequestAborted } from '../inference/inference.errors';
import { TurnTelemetryService } from '../observability/turn-telemetry.service';
import type { UsageSavings } from '../usage/usage-savings';
import { Conversation } from './conversation.entity';
import { loadTurnState, storeTurn, type TurnWrite } from './conversation.repository';
import { ConversationBusy, ConversationNotFound, TurnInterrupted } from './conversation.errors';
import { InFlightTurns } from './in-flight-turns';
import { Message, type MessageError } from './message.entity';
import { decodeConversationCursor, decodeMessageCursor, encodeCursor } from './page-cursor';
import { TurnBilling } from './turn-billing.service';
import { TurnLockService } from './turn-lock.service';

/** A turn to run. */
export interface TurnCommand {
  content: string;
  maxTokens?: number;
  temperature?: number;
  /** Response-cache control (mode, maxAgeSeconds). */
  cache?: CacheControl;
  /** Whether the client reads the answer as a stream (recorded on the trace). */
  streamed?: boolean;
  /** The HTTP request id, for the usage ledger (default: a fresh UUID). */
  requestId?: string;
}

/** A completed turn: both stored messages. */
export interface TurnRecord {
  conversation: Conversation;
  userMessage: Message;
  assistantMessage: Message;
  /** What each cache layer saved this turn, and its cost (from its usage-ledger record). */
  savings?: UsageSavings;
}

/** The payloads of a conversation turn's events (see TurnEvent). */
export interface ConversationTurnPayloads extends AgentTurnPayloads {
  done: TurnRecord;
}

/** One event of a conversation turn's stream. */
export type ConversationTurnEvent = TurnEvent<ConversationTurnPayloads>;

/** A page of results with the cursor of the next one (null at the end). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * Conversations and their turns. Every query filters by tenant: another tenant's conversation
 * is ConversationNotFound, never Forbidden.
 */
@Injectable()
export class ConversationsService {
  private readonly logger = new Logger(ConversationsService.name);

  constructor(
    private readonly em: EntityManager,
    private readonly graph: AgentGraph,
    private readonly locks: TurnLockService,
    private readonly salts: TenantSaltService,
    private readonly config: AppConfig,
    private readonly telemetry: TurnTelemetryService,
    private readonly agents: AgentRegistry,
    private readonly knowledgeBases: KnowledgeBasesService,
    private readonly inFlight: InFlightTurns,
    private readonly lifecycle: LifecycleService,
    private readonly billing: TurnBilling,
  ) {}

  /**
   * @throws AgentNotFound when `agent` names no registered agent; InvalidRequest (field
   *   `knowledgeBaseIds`) when an id is not one of the tenant's knowledge bases
   */
  async create(
    auth: AuthContext,
    input: {
      title?: string;
      metadata?: Record<string, unknown>;
      agent?: string;
      knowledgeBaseIds?: string[];
    },
  ): Promise<Conversation> {
    if (input.agent) this.agents.require(input.agent);
    let knowledgeBaseIds: string[] = [];
    try {
      knowledgeBaseIds = await this.knowledgeBases.requireOwned(auth.tenantId, input.knowledgeBaseIds ?? []);
    } catch (e) {
      if (!(e instanceof KnowledgeBaseNotFound)) throw e;
      throw new InvalidRequest(`knowledgeBaseIds: ${e.message}`, { field: 'knowledgeBaseIds' });
    }
    const em = this.em.fork();
    const conversation = em.create(Conversation, {
      tenantId: auth.tenantId,
      title: input.title ?? null,
      metadata: input.metadata ?? {},
      agent: input.agent ?? null,
      knowledgeBaseIds,
    });
    await em.flush();
    return conversation;
  }

  /** @throws ConversationNotFound */
  async get(auth: AuthContext, id: string, em: EntityManager = this.em.fork()): Promise<Conversation> {
    const conversation = await em.findOne(Conversation, { id, tenantId: auth.tenantId });
    if (!conversation) throw new ConversationNotFound(id);
    return conversation;
  }

  /** Newest first; cursor = (createdAt, id) of the last item. */
  async list(auth: AuthContext, limit = 20, cursor?: string): Promise<Page<Conversation>> {
    const em = this.em.fork();
    const where: Record<string, unknown> = { tenantId: auth.tenantId };
    if (cursor) {
      const { createdAt, id } = decodeConversationCursor(cursor);
      where.$or = [{ createdAt: { $lt: createdAt } }, { createdAt, id: { $lt: id } }];
    }
    const rows = await em.find(Conversation, where, {
      orderBy: { createdAt: 'desc', id: 'desc' },
      limit: limit + 1,
    });
    const items = rows.slice(0, limit);
    const last = items.at(-1);
    return {
      items,
      nextCursor: rows.length > limit && last ? encodeCursor([last.createdAt.toISOString(), last.id]) : null,
    };
  }

  /** Deletes a conversation and its messages. @throws ConversationNotFound */
  async remove(auth: AuthContext, id: string): Promise<void> {
    const em = this.em.fork();
    const deleted = await em.nativeDelete(Conversation, { id, tenantId: auth.tenantId });
    if (deleted === 0) throw new ConversationNotFound(id);
  }

  /** Messages in conversation order; cursor = last sequence seen. @throws ConversationNotFound */
  async messages(auth: AuthContext, id: string, limit = 50, cursor?: string): Promise<Page<Message>> {
    const em = this.em.fork();
    await this.get(auth, id, em);
    const after = cursor ? decodeMessageCursor(cursor) : 0;
    const rows = await em.find(
      Message,
      { tenantId: auth.tenantId, conversationId: id, sequence: { $gt: after } },
      { orderBy: { sequence: 'asc' }, limit: limit + 1 },
    );
    const items = rows.slice(0, limit);
    const last = items.at(-1);
    return { items, nextCursor: rows.length > limit && last ? encodeCursor([last.sequence]) : null };
  }

  /**
   * Runs one turn as one stream of events: `route`, `citations` (agents that retrieve), `cache`, `token` (the answer's deltas), `usage`,
   * then `done` with both stored messages, or `error`, for a consumer that reads the events as a stream
   * (`turnResult` drains it to the record). The HTTP routes use `run`: the same turn, its events handed to
   * a callback without a queue.
   *
   * One pass: the conversation and its history after the last compaction point are read in one
   * statement (`loadTurnState`, with
   * the token counts stored per message), and both messages are written once, together, when the
   * answer is complete. Turns of one conversation are serialised (Redis lock), so sequences never
   * collide or skip. On failure the user message is stored with status `failed` and the error, no
   * answer is stored, and the stream ends with `error`. A request rejected before the engine answers
   * (any 4xx: context length, model not allowed, a bad parameter) stores nothing.
   *
   * Crash-safe without a second write: while the turn runs it is recorded in Redis (InFlightTurns:
   * tenant, conversation, content, deadline), and the record is removed once the turn's messages are
   * stored (or there is nothing to store). If the process dies in between, or the database does not
   * take the write, the record stays and the sweeper (TurnSweeper) stores the user message as `failed`
   * with reason `interrupted` after the deadline. The turn is aborted at TURN_DEADLINE_MS, and when a
   * shutdown's drain time runs out (stored `failed`, reason `shutdown`/`deadline`; TurnInterrupted).
   * @param signal cancels the turn (the client went away): the engine request is aborted and the
   *   stream ends with RequestAborted
   * @returns events; `error` carries ConversationNotFound, PayloadTooLarge, ConversationBusy (409),
   *   DependencyUnavailable (503), TurnInterrupted (503), Engine* errors, RequestAborted (also when the
   *   client left while the turn waited for its conversation), ...
   */
  turn(
    auth: AuthContext,
    conversationId: string,
    command: TurnCommand,
    signal: AbortSignal = NEVER_ABORTED,
  ): AsyncGenerator<ConversationTurnEvent, void, undefined> {
    return turnEventStream<ConversationTurnPayloads>(signal, (sink) =>
      this.admitAndRun(auth, conversationId, command, sink),
    );
  }

  /**
   * The same turn as `turn`, with its events handed to `onEvent` as they are emitted (no queue, no async
   * iterator per event: the HTTP route's path) and its record as the result.
   * @param onEvent called synchronously with each progress event (`route`, `citations`, `cache`, `token`,
   *   `usage`); when it throws, the promise rejects with that error and later events are dropped
   * @returns the stored turn
   * @throws what `turn` ends with as its `error` event
   */
  run(
    auth: AuthContext,
    conversationId: string,
    command: TurnCommand,
    signal: AbortSignal = NEVER_ABORTED,
    onEvent?: (event: TurnProgressEvent<ConversationTurnPayloads>) => void,
  ): Promise<TurnRecord> {
    return runTurn<ConversationTurnPayloads>(
      signal,
      (sink) => this.admitAndRun(auth, conversationId, command, sink),
      onEvent,
    );
  }

  /** The turn's admission (size, the key's model allow-list), then the turn under its conversation's lock. */
  private async admitAndRun(
    auth: AuthContext,
    conversationId: string,
    command: TurnCommand,
    sink: AgentTurnSink,
  ): Promise<TurnRecord> {
    if (command.content.length > this.config.MAX_MESSAGE_CHARS) {
      throw new PayloadTooLarge(
        `content is ${command.content.length} characters; the limit is ${this.config.MAX_MESSAGE_CHARS}.`,
        { limit: this.config.MAX_MESSAGE_CHARS },
      );
    }
    // The key's model allow-list (ModelNotAllowed, 403) before anything is read or locked.
    await this.billing.admit(auth);
    const lockSignal = AbortSignal.any([sink.signal, this.lifecycle.drainExpired]);
    return this.locks.withConversation(
      conversationId,
      () => this.runLocked(auth, conversationId, command, sink),
      lockSignal,
    );
  }

  /** The turn, holding its conversation's lock: load, record in flight, run, store once. */
  private async runLocked(
    auth: AuthContext,
    conversationId: string,
    command: TurnCommand,
    sink: AgentTurnSink,
  ): Promise<TurnRecord> {
    const started = performance.now();
    const receivedAt = new Date();
    // The turn reads and writes with two statements and builds its entities itself: no fork, no identity map.
    const em = this.em;
    const loaded = await loadTurnState(em, auth.tenantId, conversationId);
    if (!loaded) throw new ConversationNotFound(conversationId);
    const { conversation, history } = loaded;
    const userSequence = conversation.messageCount + 1;

    // The turn's id is its user message's id: the sweeper can tell whether it was stored.
    const turnId = randomUUID();
    const deadline = AbortSignal.timeout(this.inFlight.deadlineMs);
    await this.inFlight.begin({
      id: turnId,
      tenantId: auth.tenantId,
      conversationId,
      content: command.content,
      receivedAt: receivedAt.getTime(),
      deadline: receivedAt.getTime() + this.inFlight.deadlineMs,
    });
    // The user message as the turn stores it, whatever the outcome (written once, in the turn's one write).
    const userRow = {
      id: turnId,
      tenantId: auth.tenantId,
      conversationId,
      sequence: userSequence,
      role: 'user' as const,
      content: command.content,
      createdAt: receivedAt,
      updatedAt: receivedAt,
    };
    // Set once the turn's outcome is stored (or there is none to store): only then is its record removed.
    let settled = false;
    const write = async (messages: Message[], tokenCounts: TurnWrite['tokenCounts'] = []): Promise<void> => {
      try {
        await storeTurn(em, { conversation, messages, tokenCounts });
        settled = true;
      } catch (e) {
        // Its sequence was taken (a lost lock): nothing stored, the client retries; nothing for the sweeper.
        if (e instanceof ConversationBusy) settled = true;
        throw e;
      }
    };
    const turnSink: AgentTurnSink = {
      signal: AbortSignal.any([sink.signal, this.lifecycle.drainExpired, deadline]),
      emit: (event) => sink.emit(event),
    };
    try {
      const observed = this.telemetry.begin({
        tenantId: auth.tenantId,
        conversationId,
        content: command.content,
        streamed: command.streamed === true,
      });
      let output;
      try {
        output = await untilAborted(
          this.graph.run(
            {
              tenantId: auth.tenantId,
              conversationId,
              pinnedAgent: conversation.agent,
              knowledgeBaseIds: conversation.knowledgeBaseIds,
              history,
              context: conversation.context,
              userName:
                typeof conversation.metadata.userName === 'string'
                  ? conversation.metadata.userName
                  : undefined,
              userMessage: command.content,
              maxTokens: command.maxTokens,
              temperature: command.temperature,
              cache: command.cache,
              cacheSalt: this.salts.saltFor(auth.tenantId),
              trace: observed.trace,
            },
            turnSink,
          ),
          turnSink.signal,
        );
      } catch (caught) {
        observed.fail(caught);
        if (isRejection(caught)) {
          // Rejected before the engine answered (bad parameters, context length, model not allowed): nothing to keep.
          settled = true;
          throw caught;
        }
        const stopped = this.lifecycle.drainExpired.aborted
          ? 'shutdown'
          : deadline.aborted
            ? 'deadline'
            : null;
        const e = stopped && !sink.signal.aborted ? new TurnInterrupted(stopped) : caught;
        // The user message is written once, as failed: kept for the record, left out of later prompts.
        const failed = newMessage({ ...userRow, status: 'failed', error: failureOf(e) });
        conversation.messageCount = userSequence;
        conversation.lastTurnAt = receivedAt;
        await write([failed]);
        throw e;
      }

      const userMessage = newMessage({
        ...userRow,
        // What the answer step measured (src/context): the message as sent, and its tokens.
        promptContent:
          output.userPromptContent !== undefined && output.userPromptContent !== command.content
            ? output.userPromptContent
            : null,
        tokenCount: output.tokenCounts?.user ?? null,
      });
      const assistantMessage = newMessage({
        tenantId: auth.tenantId,
        conversationId,
        sequence: userSequence + 1,
        role: 'assistant',
        content: output.content,
        model: output.model,
        usage: output.usage,
        timings: {
          ttftMs: round(output.timings.ttftMs),
          totalMs: round(performance.now() - started),
          ...(output.timings.engineTtftMs !== undefined
            ? { engineTtftMs: round(output.timings.engineTtftMs) }
            : {}),
          ...(output.timings.engineModelPrefillMs !== undefined
            ? { engineModelPrefillMs: round(output.timings.engineModelPrefillMs) }
            : {}),
        },
        cache: output.cache,
        route: { ...output.route },
        citations: output.citations ?? null,
        templateVersion: output.templateVersion,
        replica: output.replica,
        finishReason: output.finishReason,
        tokenCount: output.tokenCounts?.assistant ?? output.usage.completionTokens,
      });
      conversation.messageCount = userSequence + 1;
      conversation.lastTurnAt = receivedAt;
      if (output.context) conversation.context = output.context;
      // Messages stored before token counts were kept (or whose count failed) are counted once, here.
      const tokenCounts: TurnWrite['tokenCounts'] = [];
      for (const m of history) {
        const counted = m.tokenCount == null ? output.tokenCounts?.history?.[m.sequence] : undefined;
        if (counted !== undefined) tokenCounts.push({ id: m.id, tokenCount: counted });
      }
      // One statement: both messages (one multi-row INSERT), late token counts, the conversation's counters.
      await write([userMessage, assistantMessage], tokenCounts);
      // Billed once stored: one usage record (queued, never awaited), then the tokens charged to limits.
      const { row, savings } = await this.billing.bill(auth, {
        requestId: command.requestId ?? randomUUID(),
        conversationId,
        output,
        latencyMs: assistantMessage.timings?.totalMs ?? 0,
      });
      observed.succeed(output, {
        totalMs: assistantMessage.timings?.totalMs ?? 0,
        messageId: assistantMessage.id,
        cost: { usd: row.cost, avoidedUsd: row.costAvoided },
      });
      return { conversation, userMessage, assistantMessage, savings };
    } finally {
      // Not settled (the database did not take the write): the record stays for the sweeper.
      if (settled) this.inFlight.end(turnId);
    }
  }
}

/**
 * `work`, or RequestAborted as soon as `signal` aborts: a turn stopped by a shutdown or its deadline is
 * recorded at once, whatever step it is waiting in (a stalled engine, tokenizer or embedder). The graph
 * stops at its next step (its nodes and the engine request read the same signal); its late outcome is dropped.
 */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(new RequestAborted('The turn was aborted.'));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new RequestAborted('The turn was aborted.'));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Was the turn rejected before the engine produced an answer, for a reason of the request's own (a
 * 4xx: bad parameters, context length, model not allowed, rate limit)? Such a request leaves no message.
 */
function isRejection(e: unknown): boolean {
  if (!(e instanceof DomainError)) return false;
  const status: number | undefined = PROBLEM_STATUSES[e.code];
  // 499 is the client going away mid-turn, not a rejection: that turn is stored failed.
  return status !== undefined && status >= 400 && status < 499;
}

/** The error recorded on a failed user message. */
function failureOf(e: unknown): MessageError {
  if (e instanceof TurnInterrupted) return { code: e.code, detail: e.message, reason: e.reason };
  return e instanceof DomainError
    ? { code: e.code, detail: e.message }
    : { code: 'InternalError', detail: 'The turn failed unexpectedly.' };
}

const round = (ms: number): number => Math.round(ms * 100) / 100;

/**
 * A turn's message: a Message entity (the response serialises it) built from its values without an
 * EntityManager, since storeTurn writes it, never a flush (`em.create` was ~1.5 % of an api's CPU at load,
 * docs/scaling.md, "Eighth pass"). Its constructor sets `id`, `createdAt` and `updatedAt` unless given.
 */
function newMessage(values: RequiredEntityData<Message>): Message {
  return Object.assign(new Message(), values);
}
