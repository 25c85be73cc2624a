import { EntityManager } from '@mikro-orm/postgresql';
import { Injectable, Logger } from '@nestjs/common';
import { Conversation } from './conversation.entity';
import { InFlightTurns, type InFlightTurn } from './in-flight-turns';
import { Message } from './message.entity';
import { TurnLockService } from './turn-lock.service';

/** What one sweep did. */
export interface SweepResult {
  /** Turns stored as a `failed` user message with reason `interrupted`. */
  interrupted: number;
  /** Records whose turn had been stored after all (its process died after the write), or whose conversation is gone: removed. */
  alreadySettled: number;
  /** Records left for the next sweep (their conversation was busy, or the database did not answer). */
  deferred: number;
}

/**
 * Stores the turns left in flight past their deadline (InFlightTurns): their process died between the
 * turn's start and its one database write. Each becomes its conversation's next message, the user's
 * message with status `failed` and error `{code: 'TurnInterrupted', reason: 'interrupted'}` (kept for
 * the record, left out of prompts), written under the conversation's turn lock. The message id is the
 * turn id, so a turn that was stored after all is never stored twice, and a sweep that dies half-way
 * is simply repeated. Runs at boot and every TURN_SWEEP_INTERVAL_SECONDS (TurnSweepJob).
 */
@Injectable()
export class TurnSweeper {
  private readonly logger = new Logger(TurnSweeper.name);

  constructor(
    private readonly em: EntityManager,
    private readonly inFlight: InFlightTurns,
    private readonly locks: TurnLockService,
  ) {}

  /** One pass over every record past its deadline. @param now ms since epoch */
  async sweep(now = Date.now()): Promise<SweepResult> {
    const result: SweepResult = { interrupted: 0, alreadySettled: 0, deferred: 0 };
    for (;;) {
      const turns = (await this.inFlight.expired(now)).filter((t) => !this.tried.has(t.id));
      if (turns.length === 0) break;
      for (const turn of turns) {
        this.tried.add(turn.id);
        try {
          const stored = await this.locks.withConversation(turn.conversationId, () => this.store(turn));
          await this.inFlight.remove(turn.id);
          if (stored) result.interrupted++;
          else result.alreadySettled++;
        } catch (e) {
          result.deferred++;
          this.logger.warn(`turn ${turn.id} left for the next sweep: ${(e as Error).message}`);
        }
      }
    }
    this.tried.clear();
    if (result.interrupted > 0)
      this.logger.warn(`stored ${result.interrupted} interrupted turns as failed user messages`);
    return result;
  }

  /** Turns tried in the current sweep (so a deferred one is not retried in a loop). */
  private readonly tried = new Set<string>();

  /** @returns whether a message was written (false: already stored, or the conversation is gone) */
  private async store(turn: InFlightTurn): Promise<boolean> {
    return this.em.fork().transactional(async (em) => {
      if (await em.count(Message, { id: turn.id })) return false;
      const conversation = await em.findOne(Conversation, {
        id: turn.conversationId,
        tenantId: turn.tenantId,
      });
      if (!conversation) return false;
      const sequence = conversation.messageCount + 1;
      const receivedAt = new Date(turn.receivedAt);
      em.create(Message, {
        id: turn.id,
        tenantId: turn.tenantId,
        conversationId: turn.conversationId,
        sequence,
        role: 'user',
        content: turn.content,
        status: 'failed',
        error: {
          code: 'TurnInterrupted',
          detail: 'The server stopped before the turn finished; it was not answered.',
          reason: 'interrupted',
        },
        createdAt: receivedAt,
        updatedAt: new Date(),
      });
      conversation.messageCount = sequence;
      if (!conversation.lastTurnAt || conversation.lastTurnAt < receivedAt)
        conversation.lastTurnAt = receivedAt;
      return true;
    });
  }
}
