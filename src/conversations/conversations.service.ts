import { EntityManager } from '@mikro-orm/postgresql';
import { Injectable, Logger } from '@nestjs/common';
import type { AuthContext } from '../auth/api-key.service';
import { TenantSaltService } from '../auth/tenant-salt.service';
import { AgentGraph } from '../agents/agent-graph.service';
import { AgentRegistry } from '../agents/agent-registry.service';
import type { CacheControl } from '../caching/response-cache.types';
import { DomainError, PayloadTooLarge } from '../common/domain-error';
import { AppConfig } from '../config/app.config';
import type { HistoryMessage } from '../context/prompt.types';
import { TurnTelemetryService } from '../observability/turn-telemetry.service';
import { Conversation } from './conversation.entity';
import { ConversationNotFound } from './conversation.errors';
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
  /** Receives each answer delta while the engine streams. */
  onToken?: (delta: string) => void;
  /** Fires when the client goes away; the engine request is aborted. */
  signal?: AbortSignal;
}

/** A completed turn: both stored messages. */
export interface TurnRecord {
  conversation: Conversation;
  userMessage: Message;
  assistantMessage: Message;
}

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
  ) {}

  /** @throws AgentNotFound when `agent` names no registered agent */
  async create(
    auth: AuthContext,
    input: { title?: string; metadata?: Record<string, unknown>; agent?: string },
  ): Promise<Conversation> {
    if (input.agent) this.agents.require(input.agent);
    const em = this.em.fork();
    const conversation = em.create(Conversation, {
      tenantId: auth.tenantId,
      title: input.title ?? null,
      metadata: input.metadata ?? {},
      agent: input.agent ?? null,
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
   * Runs one turn: stores the user message, answers through the agent graph, stores the answer.
   * Turns of one conversation are serialised (Redis lock), so sequences never collide or skip.
   * On failure the user message is kept with status `failed` and the error, no answer is stored,
   * and the error is rethrown.
   * @throws ConversationNotFound, PayloadTooLarge, ConversationBusy, Engine* errors, RequestAborted
   */
  async runTurn(auth: AuthContext, conversationId: string, command: TurnCommand): Promise<TurnRecord> {
    if (command.content.length > this.config.MAX_MESSAGE_CHARS) {
      throw new PayloadTooLarge(
        `content is ${command.content.length} characters; the limit is ${this.config.MAX_MESSAGE_CHARS}.`,
        { limit: this.config.MAX_MESSAGE_CHARS },
      );
    }
    // Fail fast (outside the lock) for an unknown id.
    await this.get(auth, conversationId);
    return this.locks.withConversation(
      conversationId,
      async () => {
        const started = performance.now();
        const em = this.em.fork();
        const conversation = await this.get(auth, conversationId, em);
        const history = await em.find(
          Message,
          { tenantId: auth.tenantId, conversationId, status: 'complete' },
          { orderBy: { sequence: 'asc' } },
        );
        const userMessage = em.create(Message, {
          tenantId: auth.tenantId,
          conversationId,
          sequence: conversation.messageCount + 1,
          role: 'user',
          content: command.content,
        });
        conversation.messageCount += 1;
        conversation.lastTurnAt = new Date();
        await em.flush();

        const observed = this.telemetry.begin({
          tenantId: auth.tenantId,
          conversationId,
          content: command.content,
          streamed: command.onToken !== undefined,
        });
        let output;
        try {
          output = await this.graph.run({
            tenantId: auth.tenantId,
            conversationId,
            pinnedAgent: conversation.agent,
            history: history.map(
              (m): HistoryMessage => ({
                role: m.role,
                content: m.promptContent ?? m.content,
                sequence: m.sequence,
                tokenCount: m.tokenCount,
              }),
            ),
            context: conversation.context,
            userName:
              typeof conversation.metadata.userName === 'string' ? conversation.metadata.userName : undefined,
            userMessage: command.content,
            maxTokens: command.maxTokens,
            temperature: command.temperature,
            cache: command.cache,
            cacheSalt: this.salts.saltFor(auth.tenantId),
            onToken: command.onToken,
            signal: command.signal,
            trace: observed.trace,
          });
        } catch (e) {
          observed.fail(e);
          userMessage.status = 'failed';
          userMessage.error =
            e instanceof DomainError
              ? { code: e.code, detail: e.message }
              : { code: 'InternalError', detail: 'The turn failed unexpectedly.' };
          await em.flush();
          throw e;
        }

        const assistantMessage = em.create(Message, {
          tenantId: auth.tenantId,
          conversationId,
          sequence: conversation.messageCount + 1,
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
          templateVersion: output.templateVersion,
          replica: output.replica,
          finishReason: output.finishReason,
          tokenCount: output.tokenCounts?.assistant ?? output.usage.completionTokens,
        });
        conversation.messageCount += 1;
        // What the answer step measured (src/context): the window state, the user message as sent, token counts.
        if (output.context) conversation.context = output.context;
        if (output.userPromptContent !== undefined && output.userPromptContent !== userMessage.content) {
          userMessage.promptContent = output.userPromptContent;
        }
        if (output.tokenCounts?.user !== undefined) userMessage.tokenCount = output.tokenCounts.user;
        for (const m of history) m.tokenCount ??= output.tokenCounts?.history?.[m.sequence] ?? null;
        await em.flush();
        observed.succeed(output, {
          totalMs: assistantMessage.timings?.totalMs ?? 0,
          messageId: assistantMessage.id,
        });
        return { conversation, userMessage, assistantMessage };
      },
      command.signal,
    );
  }
}

const round = (ms: number): number => Math.round(ms * 100) / 100;
