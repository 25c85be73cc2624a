import type { EntityManager } from '@mikro-orm/postgresql';
import { JsonType, UniqueConstraintViolationException, type EntityProperty } from '@mikro-orm/core';
import type { HistoryMessage } from '../context/prompt.types';
import { Conversation } from './conversation.entity';
import { runBound } from '../database/run-bound';
import { Message, type MessageRole } from './message.entity';
import { ConversationBusy } from './conversation.errors';

/** A history message as a turn loads it: what the prompt needs, and its row id (to store a late token count). */
export interface TurnHistoryMessage extends HistoryMessage {
  id: string;
}

/** What a turn reads before it runs. */
export interface TurnState {
  /**
   * The conversation as its row holds it: a Conversation built from the columns, not managed by any
   * EntityManager (the turn updates its counters and stores them with `storeTurn`, never a flush).
   */
  conversation: Conversation;
  /** Complete messages after the last compaction point, oldest first. */
  history: TurnHistoryMessage[];
}

interface HistoryRow {
  id: string;
  sequence: number;
  role: MessageRole;
  content: string;
  promptContent: string | null;
  tokenCount: number | null;
}

/**
 * Everything a turn reads, in ONE statement: the conversation row and, aggregated as a JSON array, its
 * complete messages after the last compaction point (`context.droppedThroughSequence`), with only the
 * columns a prompt needs (the message as sent, and its stored token count). Rows compacted away are never
 * read again, so the work grows with the context window, not with the conversation.
 * @returns null when the tenant has no such conversation
 */
export async function loadTurnState(
  em: EntityManager,
  tenantId: string,
  conversationId: string,
): Promise<TurnState | null> {
  const { rows } = await runBound<Record<string, unknown> & { turn_history: unknown }>(
    em,
    `select c.*, coalesce((
       select json_agg(json_build_object(
                'id', m.id, 'sequence', m.sequence, 'role', m.role, 'content', m.content,
                'promptContent', m.prompt_content, 'tokenCount', m.token_count) order by m.sequence)
       from messages m
       where m.tenant_id = c.tenant_id and m.conversation_id = c.id and m.status = 'complete'
         and m.sequence > coalesce((c.context ->> 'droppedThroughSequence')::int, 0)
     ), '[]'::json) as turn_history
     from conversations c
     where c.id = ?::uuid and c.tenant_id = ?::uuid`,
    [conversationId, tenantId],
  );
  const row = rows[0];
  if (!row) return null;
  const rawHistory = row.turn_history;
  const historyRows = (typeof rawHistory === 'string' ? JSON.parse(rawHistory) : rawHistory) as HistoryRow[];
  return {
    conversation: conversationOfRow(em, row),
    history: historyRows.map((m) => ({
      id: m.id,
      role: m.role,
      content: m.promptContent ?? m.content,
      sequence: m.sequence,
      tokenCount: m.tokenCount,
    })),
  };
}

/** What a turn stores, in its one write. */
export interface TurnWrite {
  /** The conversation whose counters (`messageCount`, `lastTurnAt`, `context`) the turn set. */
  conversation: Conversation;
  /** New messages (the user message, and the answer when there is one), as `em.create` built them. */
  messages: Message[];
  /** Token counts measured this turn for earlier messages stored without one. */
  tokenCounts: { id: string; tokenCount: number }[];
}

/** A pg (or pg-compatible PGlite) error with its SQLSTATE. */
const isUniqueViolation = (e: unknown): boolean =>
  e instanceof UniqueConstraintViolationException ||
  (typeof e === 'object' && e !== null && (e as { code?: unknown }).code === '23505');

/**
 * Stores a turn in ONE statement (one round trip, atomic without BEGIN/COMMIT): a multi-row INSERT of
 * its messages and the UPDATE of earlier messages' late token counts as data-modifying CTEs, then the
 * conversation's counters. No unit of work: the columns come from the entity metadata once, the values
 * straight from the entities, sent as bind parameters (`runBound`). Should any part fail, none of it is
 * stored. The (conversation, sequence) key fences the write: should the conversation's lock have been
 * lost (Redis failed over, or this process stalled past the lock's lifetime) and another turn taken the
 * same sequence, nothing is written and the client gets a retryable 409, never a 500.
 * @throws ConversationBusy (409, retryable) when a message's (conversation, sequence) is already taken:
 *   another turn took the sequence after this one's lock was lost; nothing is stored
 */
export async function storeTurn(em: EntityManager, write: TurnWrite): Promise<void> {
  const { conversation, messages, tokenCounts } = write;
  const columns = messageColumns(em);
  const now = new Date();
  const params: unknown[] = [];
  const rows = messages.map((message) => {
    message.updatedAt = now;
    for (const column of columns) params.push(column.value(message));
    return `(${columns.map((c) => c.placeholder).join(', ')})`;
  });
  let counted = '';
  if (tokenCounts.length > 0) {
    counted =
      `, counted as (update messages m set token_count = v.token_count, updated_at = ? ` +
      `from (values ${tokenCounts.map(() => '(?::uuid, ?::int)').join(', ')}) as v(id, token_count) ` +
      `where m.id = v.id and m.tenant_id = ? returning 1)`;
    params.push(now, ...tokenCounts.flatMap((t) => [t.id, t.tokenCount]), conversation.tenantId);
  }
  conversation.updatedAt = now;
  params.push(
    conversation.messageCount,
    conversation.lastTurnAt,
    conversation.context === null ? null : JSON.stringify(conversation.context),
    now,
    conversation.id,
    conversation.tenantId,
  );
  const sql =
    `with inserted as (insert into messages (${columns.map((c) => `"${c.name}"`).join(', ')}) ` +
    `values ${rows.join(', ')} returning 1)${counted} ` +
    `update conversations set message_count = ?, last_turn_at = ?, context = ?::jsonb, updated_at = ? ` +
    `where id = ? and tenant_id = ?`;
  try {
    await runBound(em, sql, params);
  } catch (e) {
    if (isUniqueViolation(e)) {
      throw new ConversationBusy(`Conversation ${conversation.id} took another turn meanwhile; try again.`, {
        retryAfterSeconds: 1,
      });
    }
    throw e;
  }
}

interface MessageColumn {
  name: string;
  placeholder: string;
  value: (message: Message) => unknown;
}

let columnsOfMessage: MessageColumn[] | undefined;

/**
 * The messages table's columns and how each takes its value from a Message, read once from the entity
 * metadata: the value goes through the property's MikroORM type (JsonType gives the JSON text) as a flush
 * would convert it.
 */
function messageColumns(em: EntityManager): MessageColumn[] {
  const platform = em.getPlatform();
  columnsOfMessage ??= columnProps(em, Message.name).map((p) => {
    const key = p.name as keyof Message;
    const type = p.customType;
    return {
      name: p.fieldNames[0],
      placeholder: type instanceof JsonType ? '?::jsonb' : '?',
      value: (m: Message): unknown =>
        (type ? (type.convertToDatabaseValue(m[key], platform, { mode: 'query' }) as unknown) : m[key]) ??
        null,
    };
  });
  return columnsOfMessage;
}

let conversationProps: EntityProperty[] | undefined;

/**
 * A Conversation from its row (`select c.*`), property by property from the entity metadata, without
 * an EntityManager's hydration and identity map (`em.map` was ~1.5 % of an api's CPU at load). JSON
 * columns arrive parsed (pg), timestamps as text (MikroORM's pg type overrides) and become Dates.
 */
function conversationOfRow(em: EntityManager, row: Record<string, unknown>): Conversation {
  conversationProps ??= columnProps(em, Conversation.name);
  const conversation = new Conversation();
  const target = conversation as unknown as Record<string, unknown>;
  for (const p of conversationProps) {
    const value = row[p.fieldNames[0]];
    if (value === undefined) continue;
    target[p.name] = p.runtimeType === 'Date' && typeof value === 'string' ? new Date(value) : value;
  }
  return conversation;
}

/** An entity's properties stored in one column each (no embedded or composite ones), from its metadata. */
function columnProps(em: EntityManager, entityName: string): EntityProperty[] {
  return em
    .getMetadata()
    .get(entityName)
    .props.filter((p) => p.persist !== false && p.fieldNames?.length === 1);
}
