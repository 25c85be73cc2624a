import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Max,
  MaxLength,
  Min,
  MinLength,
} from 'class-validator';
import {
  RETRIEVAL_MODES,
  type RetrievalMode,
  type RetrievalResult,
  type RetrievedPassage,
} from '../retrieval.service';

/** Body of `POST /v1/knowledge-bases/:id/search`. */
export class SearchDto {
  @ApiProperty({ maxLength: 4000, example: 'How long is the warranty on the TrailMaster X4 tent?' })
  @IsString()
  @MinLength(1)
  @MaxLength(4000)
  query!: string;

  @ApiPropertyOptional({
    minimum: 1,
    maximum: 100,
    description: 'Passages to return (default KNOWLEDGE_SEARCH_K).',
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(100)
  k?: number;

  @ApiPropertyOptional({ enum: RETRIEVAL_MODES, default: 'hybrid' })
  @IsOptional()
  @IsIn(RETRIEVAL_MODES)
  mode?: RetrievalMode;

  @ApiPropertyOptional({
    description: 'Rerank the fused candidates (needs KNOWLEDGE_RERANK_URL).',
    default: false,
  })
  @IsOptional()
  @IsBoolean()
  rerank?: boolean;
}

/** Ranks of a passage in each method that found it (1-based). */
export class PassageRanksDto {
  @ApiPropertyOptional() vector?: number;
  @ApiPropertyOptional() fullText?: number;
  @ApiPropertyOptional() rerank?: number;
}

/** A retrieved passage, with what a citation needs. */
export class PassageDto {
  @ApiProperty({ format: 'uuid' }) chunkId!: string;
  @ApiProperty({ format: 'uuid' }) documentId!: string;
  @ApiProperty() documentName!: string;
  @ApiProperty({ format: 'uuid' }) knowledgeBaseId!: string;
  @ApiProperty({ description: 'Document version the passage belongs to.' }) version!: number;
  @ApiProperty({ type: [String], example: ['TrailMaster X4 Tent', 'Warranty Information'] })
  headingPath!: string[];
  @ApiProperty({ description: 'Start offset in the extracted text, characters.' }) start!: number;
  @ApiProperty({ description: 'End offset (exclusive), characters.' }) end!: number;
  @ApiProperty() text!: string;
  @ApiProperty({
    description:
      'Higher is better: RRF score (hybrid), cosine or ts_rank_cd (one method), or rerank relevance.',
  })
  score!: number;
  @ApiProperty({ type: PassageRanksDto }) ranks!: PassageRanksDto;
  @ApiPropertyOptional({ description: 'Cosine similarity to the query, when vector search found it.' })
  similarity?: number;

  static from(p: RetrievedPassage): PassageDto {
    return { ...p };
  }
}

/** Response of a search. */
export class SearchResponseDto {
  @ApiProperty({ type: [PassageDto] }) passages!: PassageDto[];
  @ApiProperty({ enum: RETRIEVAL_MODES, description: 'Methods that ran.' }) mode!: RetrievalMode;
  @ApiPropertyOptional({ description: 'Why vector search did not run although asked for.' })
  degraded?: string;
  @ApiProperty() reranked!: boolean;
  @ApiPropertyOptional({ description: 'Why the reranker order was not applied.' }) rerankError?: string;

  static from(r: RetrievalResult): SearchResponseDto {
    return { ...r, passages: r.passages.map((p) => PassageDto.from(p)) };
  }
}
