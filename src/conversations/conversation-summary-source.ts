import { EntityManager } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import type { SummarySource } from '../context/summaries/summary-source';
import { Conversation } from './conversation.entity';
import { Message } from './message.entity';

/** The `summaries` job's view of a conversation: its complete messages in a sequence range. */
@Injectable()
export class ConversationSummarySource implements SummarySource {
  constructor(private readonly em: EntityManager) {}

  async messagesToSummarize(
    tenantId: string,
    conversationId: string,
    afterSequence: number,
    throughSequence: number,
  ): Promise<Pick<Message, 'role' | 'content'>[] | null> {
    const conversation = await this.em.findOne(Conversation, { id: conversationId, tenantId });
    if (!conversation) return null;
    const messages = await this.em.find(
      Message,
      {
        tenantId,
        conversationId,
        status: 'complete',
        sequence: { $gt: afterSequence, $lte: throughSequence },
      },
      { orderBy: { sequence: 'asc' } },
    );
    return messages.map((m) => ({ role: m.role, content: m.content }));
  }
}
