import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { CitationDto } from '../../agents/dto/citation.dto';
import { RouteDecisionDto } from '../../agents/dto/route-decision.dto';
import { clientDetail } from '../../common/client-detail';
import type { Message } from '../message.entity';

/** Token usage of one engine call, in tokens. */
export class UsageDto {
  @ApiProperty({ description: 'Prompt tokens the engine processed.' }) promptTokens!: number;
  @ApiProperty({ description: 'Tokens generated.' }) completionTokens!: number;
  @ApiProperty({ description: 'Prompt tokens served from the engine prefix cache.' }) cachedTokens!: number;
}

/** Turn timings, in ms, measured by the backend. */
export class TimingsDto {
  @ApiProperty({ description: 'Time to first token, ms (0 when answered from the response cache).' })
  ttftMs!: number;
  @ApiProperty({ description: 'Whole turn, ms.' }) totalMs!: number;
  @ApiPropertyOptional({ description: "The engine's own TTFT, ms, when it reports one." })
  engineTtftMs?: number;
  @ApiPropertyOptional({
    description:
      "The engine's modelled prefill time (no queueing, before time scaling), ms, when it reports one (the simulator does).",
  })
  engineModelPrefillMs?: number;
}

/** What the response cache did for a turn. */
export class ResponseCacheReportDto {
  @ApiProperty() hit!: boolean;
  @ApiPropertyOptional({ enum: ['exact', 'semantic'] }) type?: 'exact' | 'semantic';
  @ApiPropertyOptional({ description: 'Cosine similarity of a semantic hit (0..1).' }) similarity?: number;
  @ApiPropertyOptional() entryId?: string;
  @ApiPropertyOptional({ description: 'Guard that rejected a close-but-different candidate.' })
  guard?: string;
}

/** What each cache layer did for a turn: engine prefix cache and response cache. */
export class CacheReportDto {
  @ApiProperty({ description: 'Engine-reported cached prompt tokens.' }) cachedTokens!: number;
  @ApiProperty({ description: 'cachedTokens / promptTokens (0..1).' }) prefixReuse!: number;
  @ApiPropertyOptional({ description: 'Prompt tokens the engine reported.' }) promptTokens?: number;
  @ApiPropertyOptional({
    description: "Backend's own figure: block-aligned common token prefix with the previous prompt.",
  })
  backendReusableTokens?: number;
  @ApiPropertyOptional({ description: 'backendReusableTokens / promptTokens (0..1).' })
  backendPrefixReuse?: number;
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description:
      'Context window this turn: policy, budget (tokens), estimatedPromptTokens, droppedThroughSequence, summaryThroughSequence, compacted, compactions.',
  })
  window?: Record<string, unknown>;
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description:
      'How the engine replica was chosen: policy, reason (prefix/session/spill/...), matchedTokens, attempts.',
  })
  router?: Record<string, unknown>;
  @ApiPropertyOptional({ type: ResponseCacheReportDto }) response?: ResponseCacheReportDto;
}

/** Why a turn failed, recorded on its user message. */
export class MessageErrorDto {
  @ApiProperty({ example: 'EngineUnavailable' }) code!: string;
  @ApiProperty() detail!: string;
}

/** A stored message as the API returns it. */
export class MessageDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) conversationId!: string;
  @ApiProperty({ description: 'Position in the conversation, 1-based, dense.' }) sequence!: number;
  @ApiProperty({ enum: ['system', 'user', 'assistant'] }) role!: string;
  @ApiProperty() content!: string;
  @ApiProperty({ enum: ['complete', 'failed'] }) status!: string;
  @ApiPropertyOptional({ type: MessageErrorDto, nullable: true }) error!: MessageErrorDto | null;
  @ApiPropertyOptional({ type: Number, nullable: true, description: 'Tokens of this message alone.' })
  tokenCount!: number | null;
  @ApiPropertyOptional({ type: String, nullable: true }) model!: string | null;
  @ApiPropertyOptional({ type: UsageDto, nullable: true }) usage!: UsageDto | null;
  @ApiPropertyOptional({ type: TimingsDto, nullable: true }) timings!: TimingsDto | null;
  @ApiPropertyOptional({ type: CacheReportDto, nullable: true }) cache!: CacheReportDto | null;
  @ApiPropertyOptional({
    type: () => RouteDecisionDto,
    nullable: true,
    description: 'How the turn was routed (assistant messages).',
  })
  route!: Record<string, unknown> | null;
  @ApiPropertyOptional({
    type: [CitationDto],
    nullable: true,
    description:
      'Passages the answer was given (assistant messages of agents that retrieve, e.g. `knowledge`).',
  })
  citations!: CitationDto[] | null;
  @ApiPropertyOptional({ type: String, nullable: true }) templateVersion!: string | null;
  @ApiPropertyOptional({ type: String, nullable: true }) replica!: string | null;
  @ApiPropertyOptional({ type: String, nullable: true }) finishReason!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;

  static from(m: Message): MessageDto {
    return {
      id: m.id,
      conversationId: m.conversationId,
      sequence: m.sequence,
      role: m.role,
      content: m.content,
      status: m.status,
      error: m.error ? { code: m.error.code, detail: clientDetail(m.error.detail) } : null,
      tokenCount: m.tokenCount,
      model: m.model,
      usage: m.usage,
      timings: m.timings,
      cache: m.cache,
      route: m.route,
      citations: m.citations,
      templateVersion: m.templateVersion,
      replica: m.replica,
      finishReason: m.finishReason,
      createdAt: m.createdAt.toISOString(),
    };
  }
}

/** One page of messages, in conversation order. */
export class MessagePageDto {
  @ApiProperty({ type: [MessageDto] }) data!: MessageDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}
