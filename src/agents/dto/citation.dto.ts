import { ApiProperty } from '@nestjs/swagger';

/** A passage an answer was given: one chunk of one version of a knowledge document (`Citation`). */
export class CitationDto {
  @ApiProperty({
    description: 'The passage number in the prompt, `[n]` in the answer (1-based).',
    example: 1,
  })
  index!: number;
  @ApiProperty({ format: 'uuid' }) documentId!: string;
  @ApiProperty({ description: 'The document name in its knowledge base.', example: 'manuals/router.md' })
  documentName!: string;
  @ApiProperty({ format: 'uuid' }) knowledgeBaseId!: string;
  @ApiProperty({ description: 'Document version the passage was read from.', example: 3 }) version!: number;
  @ApiProperty({ type: [String], description: 'Headings above the passage, outermost first.' })
  headingPath!: string[];
  @ApiProperty({ description: 'Start offset in the extracted text, characters.' }) start!: number;
  @ApiProperty({ description: 'End offset (exclusive), characters.' }) end!: number;
  @ApiProperty({ description: 'Retrieval score, higher is better (RRF score in hybrid mode).' })
  score!: number;
  @ApiProperty({ format: 'uuid' }) chunkId!: string;
}
