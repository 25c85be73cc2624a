import { EntityManager } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import { CacheStatsSection, type CacheStatsScope, type CacheStatsSource } from '../caching/cache-stats.types';
import { Conversation } from './conversation.entity';
import { ConversationNotFound } from './conversation.errors';

/** Token sums over a set of turns. */
export interface PrefixTotals {
  /** Turns answered by the engine (response-cache hits are not counted). */
  turns: number;
  /** Prompt tokens the engine reported. */
  promptTokens: number;
  /** Of those, tokens the engine served from its prefix cache (GPU or LMCache). */
  cachedTokens: number;
  /** cachedTokens / promptTokens (0..1; 0 with no turns). */
  prefixReuse: number;
  /** The backend's own figure: tokens shared, block aligned, with the previous prompt of the conversation. */
  backendReusableTokens: number;
  /** backendReusableTokens / promptTokens (0..1). */
  backendPrefixReuse: number;
}

/** `layers.prefix` of the cache stats: KV prefix reuse as recorded on each turn. */
export interface PrefixStats {
  /** Conversations with at least one engine-answered turn. */
  conversations: number;
  /** Every turn. */
  all: PrefixTotals;
  /** Turns 2 and later of each conversation (the first turn of a conversation has no history to reuse). */
  laterTurns: PrefixTotals;
  /** 1 - computed prompt tokens / prompt tokens, over every turn (the engine's prefill saved). */
  prefillReduction: number;
  /** Turns at which the context window moved (compactions, or the sliding window dropping messages). */
  windowMoves: number;
}

interface Row {
  conversations: string | number;
  turns: string | number;
  prompt_tokens: string | number;
  cached_tokens: string | number;
  backend_tokens: string | number;
  later_turns: string | number;
  later_prompt_tokens: string | number;
  later_cached_tokens: string | number;
  later_backend_tokens: string | number;
  window_moves: string | number;
}

const ratio = (a: number, b: number): number => (b > 0 ? a / b : 0);

function totals(turns: number, prompt: number, cached: number, backend: number): PrefixTotals {
  return {
    turns,
    promptTokens: prompt,
    cachedTokens: cached,
    prefixReuse: ratio(cached, prompt),
    backendReusableTokens: backend,
    backendPrefixReuse: Math.min(1, ratio(backend, prompt)),
  };
}

/**
 * Prefix-reuse aggregates from the turns themselves (each assistant message stores its usage and
 * cache report), per conversation, per tenant, or over every tenant. The `prefix` section of
 * `GET /v1/cache/stats`: it lives beside the messages it reads and reaches the stats service through
 * caching's CacheStatsSource port (discovered by `@CacheStatsSection()`).
 */
@Injectable()
@CacheStatsSection()
export class PrefixStatsSource implements CacheStatsSource {
  readonly section = 'prefix';

  constructor(private readonly em: EntityManager) {}

  /** @throws ConversationNotFound when `scope.conversationId` is not one of the caller's tenant */
  async collect(scope: CacheStatsScope): Promise<PrefixStats> {
    const em = this.em.fork();
    const where: string[] = [`m.role = 'assistant'`, `m.status = 'complete'`, `m.usage is not null`];
    const params: unknown[] = [];
    if (scope.conversationId) {
      const found = await em.count(Conversation, { id: scope.conversationId, tenantId: scope.tenantId });
      if (found === 0) throw new ConversationNotFound(scope.conversationId);
      where.push('m.conversation_id = ?');
      params.push(scope.conversationId);
    }
    if (scope.kind === 'tenant' || scope.conversationId) {
      where.push('m.tenant_id = ?');
      params.push(scope.tenantId);
    }
    // Response-cache hits never reached the engine: they say nothing about KV reuse.
    where.push(`coalesce((m.cache -> 'response' ->> 'hit')::boolean, false) = false`);
    const sql = `
      with turns as (
        select m.conversation_id, m.usage, m.cache,
               row_number() over (partition by m.conversation_id order by m.sequence) as turn_index
        from messages m
        where ${where.join(' and ')}
      )
      select count(distinct conversation_id) as conversations,
             count(*) as turns,
             coalesce(sum((usage ->> 'promptTokens')::bigint), 0) as prompt_tokens,
             coalesce(sum((usage ->> 'cachedTokens')::bigint), 0) as cached_tokens,
             coalesce(sum((cache ->> 'backendReusableTokens')::bigint), 0) as backend_tokens,
             count(*) filter (where turn_index > 1) as later_turns,
             coalesce(sum((usage ->> 'promptTokens')::bigint) filter (where turn_index > 1), 0) as later_prompt_tokens,
             coalesce(sum((usage ->> 'cachedTokens')::bigint) filter (where turn_index > 1), 0) as later_cached_tokens,
             coalesce(sum((cache ->> 'backendReusableTokens')::bigint) filter (where turn_index > 1), 0) as later_backend_tokens,
             count(*) filter (where coalesce((cache -> 'window' ->> 'compacted')::boolean, false)) as window_moves
      from turns`;
    const [row] = await em.getConnection().execute<Row[]>(sql, params);
    const n = (v: string | number): number => Number(v);
    const all = totals(n(row.turns), n(row.prompt_tokens), n(row.cached_tokens), n(row.backend_tokens));
    return {
      conversations: n(row.conversations),
      all,
      laterTurns: totals(
        n(row.later_turns),
        n(row.later_prompt_tokens),
        n(row.later_cached_tokens),
        n(row.later_backend_tokens),
      ),
      prefillReduction: ratio(all.cachedTokens, all.promptTokens),
      windowMoves: n(row.window_moves),
    };
  }
}
