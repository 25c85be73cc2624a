import type { EntityManager } from '@mikro-orm/postgresql';
import type { HistoryMessage } from '../context/prompt.types';
import { Conversation } from './conversation.entity';
import type { MessageRole } from './message.entity';

/** A history message as a turn loads it: what the prompt needs, and its row id (to store a late token count). */
export interface TurnHistoryMessage extends HistoryMessage {
  id: string;
}

/** What a turn reads before it runs. */
export interface TurnState {
  /** The conversation, managed by the caller's EntityManager (its counters are updated at the end). */
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
  const [row] = await em.getConnection().execute<(Record<string, unknown> & { turn_history: unknown })[]>(
    `select c.*, coalesce((
       select json_agg(json_build_object(
                'id', m.id, 'sequence', m.sequence, 'role', m.role, 'content', m.content,
                'promptContent', m.prompt_content, 'tokenCount', m.token_count) order by m.sequence)
       from messages m
       where m.tenant_id = c.tenant_id and m.conversation_id = c.id and m.status = 'complete'
         and m.sequence > coalesce((c.context ->> 'droppedThroughSequence')::int, 0)
     ), '[]'::json) as turn_history
     from conversations c
     where c.id = ? and c.tenant_id = ?`,
    [conversationId, tenantId],
  );
  if (!row) return null;
  const { turn_history: rawHistory, ...conversationRow } = row;
  const rows = (typeof rawHistory === 'string' ? JSON.parse(rawHistory) : rawHistory) as HistoryRow[];
  return {
    conversation: em.map(Conversation, conversationRow),
    history: rows.map((m) => ({
      id: m.id,
      role: m.role,
      content: m.promptContent ?? m.content,
      sequence: m.sequence,
      tokenCount: m.tokenCount,
    })),
  };
}
