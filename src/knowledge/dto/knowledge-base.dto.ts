import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import type { KnowledgeBaseSummary } from '../knowledge-bases.service';

const NAME = /^[\p{L}\p{N}][\p{L}\p{N} ._-]{0,199}$/u;
const NAME_MESSAGE =
  'name must be 1-200 letters, digits, spaces, ".", "_" or "-", starting with a letter or digit';

/** Body of `POST /v1/knowledge-bases`. */
export class CreateKnowledgeBaseDto {
  @ApiProperty({ maxLength: 200, example: 'product-manuals', description: 'Unique per tenant.' })
  @IsString()
  @Matches(NAME, { message: NAME_MESSAGE })
  name!: string;

  @ApiPropertyOptional({ maxLength: 2000, example: 'Manuals of every product we sell' })
  @IsOptional()
  @IsString()
  @MaxLength(2000)
  description?: string;
}

/** Body of `PATCH /v1/knowledge-bases/:id`. */
export class UpdateKnowledgeBaseDto {
  @ApiPropertyOptional({ maxLength: 200 })
  @IsOptional()
  @IsString()
  @Matches(NAME, { message: NAME_MESSAGE })
  name?: string;

  @ApiPropertyOptional({ maxLength: 2000, type: String, nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(2000)
  description?: string;
}

/** A knowledge base as the API returns it. */
export class KnowledgeBaseDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ type: String, nullable: true }) description!: string | null;
  @ApiProperty({ description: 'Documents, any status.' }) documents!: number;
  @ApiProperty({ description: 'Documents with a version served by retrieval.' }) searchableDocuments!: number;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;

  static from(s: KnowledgeBaseSummary): KnowledgeBaseDto {
    const kb = s.knowledgeBase;
    return {
      id: kb.id,
      name: kb.name,
      description: kb.description,
      documents: s.documents,
      searchableDocuments: s.searchableDocuments,
      createdAt: kb.createdAt.toISOString(),
      updatedAt: kb.updatedAt.toISOString(),
    };
  }
}

/** Every knowledge base of the tenant. */
export class KnowledgeBaseListDto {
  @ApiProperty({ type: [KnowledgeBaseDto] }) data!: KnowledgeBaseDto[];
}
