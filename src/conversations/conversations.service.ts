import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { EntityManager } from '@mikro-orm/postgresql';
import { Injectable, Logger } from '@nestjs/common';
import type { AuthContext } from '../auth/api-key.service';
import { TenantSaltService } from '../auth/tenant-salt.service';
import { AgentGraph } from '../agents/agent-graph.service';
import { AgentRegistry } from '../agents/agent-registry.service';
import type { AgentTurnPayloads, AgentTurnSink } from '../agents/agents.types';
import type { CacheControl } from '../caching/response-cache.types';
import { DomainError, InvalidRequest, PayloadTooLarge } from '../common/domain-error';
import { KnowledgeBasesService } from '../knowledge/knowledge-bases.service';
import { KnowledgeBaseNotFound } from '../knowledge/knowledge.errors';
import { NEVER_ABORTED, type TurnEvent, turnEventStream } from '../common/turn-events';
import { AppConfig } from '../config/app.config';
import { TurnTelemetryService } from '../observability/turn-telemetry.service';
import { Conversation } from './conversation.entity';
import { loadTurnState } from './conversation.repository';
import { ConversationBusy, ConversationNotFound } from './conversation.errors';
import { Message } from './message.entity';
import { decodeConversationCursor, decodeMessageCursor, encodeCursor } from './page-cursor';
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
}

/** A completed turn: both stored messages. */
export interface TurnRecord {
  conversation: Conversation;
  userMessage: Message;
  assistantMessage: Message;
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
   * then `done` with both stored messages, or `error`. The JSON response, the SSE response and any
   * other consumer read the same stream (`turnResult` drains it to the record).
   *
   * One pass: the conversation and its history after the last compaction point are read in one
   * statement (`loadTurnState`, with
   * the token counts stored per message), and both messages are written once, together, when the
   * answer is complete. Turns of one conversation are serialised (Redis lock), so sequences never
   * collide or skip. On failure the user message is stored with status `failed` and the error, no
   * answer is stored, and the stream ends with `error`.
   * @param signal cancels the turn (the client went away): the engine request is aborted and the
   *   stream ends with RequestAborted
   * @returns events; `error` carries ConversationNotFound, PayloadTooLarge, ConversationBusy (409),
   *   DependencyUnavailable (503), Engine* errors, RequestAborted (also when the client left while the
   *   turn waited for its conversation), ...
   */
  turn(
    auth: AuthContext,
    conversationId: string,
    command: TurnCommand,
    signal: AbortSignal = NEVER_ABORTED,
  ): AsyncGenerator<ConversationTurnEvent, void, undefined> {
    return turnEventStream<ConversationTurnPayloads>(signal, (sink) =>
      this.runTurn(auth, conversationId, command, sink),
    );
  }

  private async runTurn(
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
    return this.locks.withConversation(
      conversationId,
      async () => {
        const started = performance.now();
        const receivedAt = new Date();
        const em = this.em.fork();
        const loaded = await loadTurnState(em, auth.tenantId, conversationId);
        if (!loaded) throw new ConversationNotFound(conversationId);
        const { conversation, history } = loaded;
        const userSequence = conversation.messageCount + 1;

        const observed = this.telemetry.begin({
          tenantId: auth.tenantId,
          conversationId,
          content: command.content,
          streamed: command.streamed === true,
        });
        let output;
        try {
          output = await this.graph.run(
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
            sink,
          );
        } catch (e) {
          observed.fail(e);
          // The user message is written once, as failed: kept for the record, left out of later prompts.
          em.create(Message, {
            tenantId: auth.tenantId,
            conversationId,
            sequence: userSequence,
            role: 'user',
            content: command.content,
            status: 'failed',
            error:
              e instanceof DomainError
                ? { code: e.code, detail: e.message }
                : { code: 'InternalError', detail: 'The turn failed unexpectedly.' },
            createdAt: receivedAt,
            updatedAt: receivedAt,
          });
          conversation.messageCount = userSequence;
          conversation.lastTurnAt = receivedAt;
          await flushTurn(em, conversationId);
          throw e;
        }

        const userMessage = em.create(Message, {
          tenantId: auth.tenantId,
          conversationId,
          sequence: userSequence,
          role: 'user',
          content: command.content,
          // What the answer step measured (src/context): the message as sent, and its tokens.
          promptContent:
            output.userPromptContent !== undefined && output.userPromptContent !== command.content
              ? output.userPromptContent
              : null,
          tokenCount: output.tokenCounts?.user ?? null,
          createdAt: receivedAt,
          updatedAt: receivedAt,
        });
        const assistantMessage = em.create(Message, {
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
        for (const m of history) {
          const counted = m.tokenCount == null ? output.tokenCounts?.history?.[m.sequence] : undefined;
          if (counted !== undefined) em.getReference(Message, m.id).tokenCount = counted;
        }
        // One transaction: both messages (one multi-row INSERT) and the conversation's counters.
        await flushTurn(em, conversationId);
        observed.succeed(output, {
          totalMs: assistantMessage.timings?.totalMs ?? 0,
          messageId: assistantMessage.id,
        });
        return { conversation, userMessage, assistantMessage };
      },
      sink.signal,
    );
  }
}

const round = (ms: number): number => Math.round(ms * 100) / 100;

/**
 * Writes a turn. The (conversation, sequence) key fences it: should the conversation's lock have been
 * lost (Redis failed over, or this process stalled past the lock's lifetime) and another turn taken
 * the same sequence, nothing is written and the client gets a retryable 409, never a 500.
 * @throws ConversationBusy on a sequence already taken
 */
async function flushTurn(em: EntityManager, conversationId: string): Promise<void> {
  try {
    await em.flush();
  } catch (e) {
    if (e instanceof UniqueConstraintViolationException) {
      throw new ConversationBusy(`Conversation ${conversationId} took another turn meanwhile; try again.`, {
        retryAfterSeconds: 1,
      });
    }
    throw e;
  }
}
