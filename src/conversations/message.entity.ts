import { Entity, Enum, Index, ManyToOne, Property, Unique } from '@mikro-orm/core';
import { Tenant } from '../auth/tenant.entity';
import type { MessageCacheReport } from '../context/cache-report';
import type { Citation } from '../agents/agents.types';
import { BaseEntity } from '../database/base.entity';
import { Conversation } from './conversation.entity';

export type MessageRole = 'system' | 'user' | 'assistant';
/** `complete`: part of the conversation. `failed`: the turn failed; kept for the record, left out of prompts. */
export type MessageStatus = 'complete' | 'failed';

/** Token usage of one engine call, in tokens. */
export interface MessageUsage {
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens the engine served from its prefix cache (`usage.prompt_tokens_details.cached_tokens`). */
  cachedTokens: number;
}

/** Timings of one turn, in ms, measured by the backend. */
export interface MessageTimings {
  /** From the start of the engine request to the first token (0 for a response-cache hit). */
  ttftMs: number;
  /** Whole turn, from receiving it to storing the answer. */
  totalMs: number;
  /** The engine's own TTFT, when it reports one (the simulator does). */
  engineTtftMs?: number;
  /** The engine's modelled prefill time without queueing, before time scaling, when it reports one (the simulator does). */
  engineModelPrefillMs?: number;
}

/** Failure of a turn, as recorded on its user message. */
export interface MessageError {
  code: string;
  detail: string;
  /**
   * Why a turn stopped without an error of its own: `interrupted` (its process died mid-turn; stored
   * by the sweeper), `shutdown` (the drain time ran out), `deadline` (past TURN_DEADLINE_MS).
   */
  reason?: TurnStopReason;
}

/** Why a turn stopped before its answer (see MessageError.reason). */
export type TurnStopReason = 'interrupted' | 'shutdown' | 'deadline';

/** One message of a conversation. `sequence` is dense and unique per conversation (1, 2, 3, ...). */
@Entity({ tableName: 'messages' })
@Unique({ properties: ['conversationId', 'sequence'] })
@Index({ properties: ['tenantId', 'conversationId', 'sequence'] })
export class Message extends BaseEntity<
  | 'status'
  | 'error'
  | 'tokenCount'
  | 'promptContent'
  | 'model'
  | 'usage'
  | 'timings'
  | 'cache'
  | 'route'
  | 'citations'
  | 'templateVersion'
  | 'replica'
  | 'finishReason'
> {
  @ManyToOne(() => Tenant, { mapToPk: true, fieldName: 'tenant_id', deleteRule: 'cascade' })
  tenantId!: string;

  @ManyToOne(() => Conversation, { mapToPk: true, fieldName: 'conversation_id', deleteRule: 'cascade' })
  conversationId!: string;

  @Property({ type: 'integer' })
  sequence!: number;

  @Enum({ items: ['system', 'user', 'assistant'] })
  role!: MessageRole;

  @Property({ type: 'text' })
  content!: string;

  @Enum({ items: ['complete', 'failed'] })
  status: MessageStatus = 'complete';

  @Property({ type: 'json', nullable: true })
  error: MessageError | null = null;

  /**
   * The message as it was sent to the engine, when that differs from `content` (a user message with
   * its volatile tail: date, retrieved passages). Prompts replay it byte for byte, so the engine's
   * cached prefix covers it on later turns.
   */
  @Property({ type: 'text', nullable: true })
  promptContent: string | null = null;

  /** Tokens of the message as sent (`promptContent ?? content`), counted once with the engine's tokenizer (null until counted). */
  @Property({ type: 'integer', nullable: true })
  tokenCount: number | null = null;

  @Property({ type: 'string', length: 200, nullable: true })
  model: string | null = null;

  @Property({ type: 'json', nullable: true })
  usage: MessageUsage | null = null;

  @Property({ type: 'json', nullable: true })
  timings: MessageTimings | null = null;

  @Property({ type: 'json', nullable: true })
  cache: MessageCacheReport | null = null;

  /** Routing decision (agent, score, classifier) for assistant messages. */
  @Property({ type: 'json', nullable: true })
  route: Record<string, unknown> | null = null;

  /** Passages the answer was given, with document, version, heading path, offsets and score (assistant messages). */
  @Property({ type: 'json', nullable: true })
  citations: Citation[] | null = null;

  /** Version of the prompt template that produced this answer. */
  @Property({ type: 'string', length: 100, nullable: true })
  templateVersion: string | null = null;

  /** Engine replica that answered. */
  @Property({ type: 'string', length: 300, nullable: true })
  replica: string | null = null;

  @Property({ type: 'string', length: 50, nullable: true })
  finishReason: string | null = null;
}
