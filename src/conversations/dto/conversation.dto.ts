import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  IsUUID,
  Matches,
  Max,
  MaxLength,
  Min,
} from 'class-validator';
import type { Conversation } from '../conversation.entity';

/** Body of `POST /v1/conversations`. */
export class CreateConversationDto {
  @ApiPropertyOptional({ maxLength: 500, example: 'Trip planning' })
  @IsOptional()
  @IsString()
  @MaxLength(500)
  title?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, example: { userRef: 'u-123' } })
  @IsOptional()
  @IsObject()
  metadata?: Record<string, unknown>;

  @ApiPropertyOptional({ description: 'Pin an agent (skips intent routing).', example: 'assistant' })
  @IsOptional()
  @IsString()
  @Matches(/^[a-z][a-z0-9_-]{0,99}$/, {
    message: 'agent must be an agent name (lowercase letters, digits, - and _)',
  })
  agent?: string;

  @ApiPropertyOptional({
    type: [String],
    format: 'uuid',
    maxItems: 20,
    description:
      'Bind the conversation to these knowledge bases of the tenant: the `knowledge` agent searches only them ' +
      '(unbound: all the tenant’s). An id that is not the tenant’s is a 400 naming it.',
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(20)
  @IsUUID(undefined, { each: true, message: 'knowledgeBaseIds must contain knowledge base ids (uuids)' })
  knowledgeBaseIds?: string[];
}

/** Cursor paging: `limit` (1..100) and the opaque `cursor` of the previous page. */
export class PageQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 100, default: 20 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit?: number;

  @ApiPropertyOptional({ description: 'Opaque cursor from the previous page.' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  cursor?: string;
}

/** A conversation as the API returns it (timestamps as ISO 8601 UTC). */
export class ConversationDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ type: String, nullable: true }) title!: string | null;
  @ApiProperty({ type: 'object', additionalProperties: true }) metadata!: Record<string, unknown>;
  @ApiProperty({ type: String, nullable: true, description: 'Pinned agent.' }) agent!: string | null;
  @ApiProperty({ type: [String], description: 'Knowledge bases the conversation is bound to (empty: none).' })
  knowledgeBaseIds!: string[];
  @ApiProperty({ description: 'Messages stored, failed turns included.' }) messageCount!: number;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) lastTurnAt!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;

  static from(c: Conversation): ConversationDto {
    return {
      id: c.id,
      title: c.title,
      metadata: c.metadata,
      agent: c.agent,
      knowledgeBaseIds: c.knowledgeBaseIds,
      messageCount: c.messageCount,
      lastTurnAt: c.lastTurnAt?.toISOString() ?? null,
      createdAt: c.createdAt.toISOString(),
      updatedAt: c.updatedAt.toISOString(),
    };
  }
}

/** One page of conversations, newest first. */
export class ConversationPageDto {
  @ApiProperty({ type: [ConversationDto] }) data!: ConversationDto[];
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Pass as `cursor` for the next page; null at the end.',
  })
  nextCursor!: string | null;
}
