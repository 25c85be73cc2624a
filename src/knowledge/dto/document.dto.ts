import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, IsUrl, MaxLength, ValidateIf } from 'class-validator';
import type { Ingestion } from '../ingestion.entity';
import {
  DOCUMENT_CONTENT_TYPES,
  INGESTION_STATUSES,
  type IngestionStatus,
  type KnowledgeDocument,
} from '../knowledge-document.entity';

/**
 * JSON body of `POST /v1/knowledge-bases/:id/documents`: `content` (text, or base64 with
 * `encoding: "base64"` for a PDF), or `url` of a file under the operator's KNOWLEDGE_URL_ALLOWLIST.
 */
export class UploadDocumentDto {
  @ApiPropertyOptional({
    maxLength: 500,
    example: 'tents/trailmaster-x4.md',
    description:
      'Unique in the knowledge base; uploading a name again replaces that document. Default: the URL file name.',
  })
  @ValidateIf((o: UploadDocumentDto) => o.url === undefined || o.name !== undefined)
  @IsString()
  @MaxLength(500)
  name?: string;

  @ApiPropertyOptional({
    example: 'text/markdown',
    description: `One of ${DOCUMENT_CONTENT_TYPES.join(', ')}; default: from the name's extension (or the URL's Content-Type).`,
  })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  contentType?: string;

  @ApiPropertyOptional({ description: 'The document itself (exactly one of content and url).' })
  @ValidateIf((o: UploadDocumentDto) => o.url === undefined)
  @IsString()
  content?: string;

  @ApiPropertyOptional({
    enum: ['utf8', 'base64'],
    default: 'utf8',
    description: '`base64` for binary content (PDF).',
  })
  @IsOptional()
  @IsIn(['utf8', 'base64'])
  encoding?: 'utf8' | 'base64';

  @ApiPropertyOptional({
    example: 'https://docs.example.com/manuals/x4.md',
    description: 'Fetched by the server; must be allow-listed.',
  })
  @ValidateIf((o: UploadDocumentDto) => o.content === undefined)
  @IsUrl(
    { require_tld: false, require_protocol: true, protocols: ['http', 'https'] },
    { message: 'url must be an http(s) URL' },
  )
  url?: string;
}

/** Progress of an ingestion. */
export class IngestionDto {
  @ApiProperty({ format: 'uuid', description: 'Also the Bull job id.' }) id!: string;
  @ApiProperty({ format: 'uuid' }) documentId!: string;
  @ApiProperty({ enum: INGESTION_STATUSES }) status!: IngestionStatus;
  @ApiProperty({ description: 'Chunks whose embedding is known (reused or embedded now).' })
  chunksDone!: number;
  @ApiProperty({ description: 'Chunks of the new version (0 until parsed).' }) chunksTotal!: number;
  @ApiProperty({
    description: "Chunks embedded by this ingestion (the others kept an identical chunk's embedding).",
  })
  chunksEmbedded!: number;
  @ApiProperty({ description: '/v1/embeddings requests made.' }) embeddingRequests!: number;
  @ApiProperty({ description: 'Content equal to the served version: nothing was re-chunked or embedded.' })
  unchanged!: boolean;
  @ApiProperty({ description: 'Attempts started (transient failures are retried with backoff).' })
  attempts!: number;
  @ApiProperty({ type: Number, nullable: true, description: 'Document version made (or kept), once ready.' })
  version!: number | null;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Why it failed (or why the last attempt failed).',
  })
  error!: string | null;
  @ApiProperty({ description: 'Upload size, bytes.' }) sizeBytes!: number;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) finishedAt!: string | null;

  static from(i: Ingestion): IngestionDto {
    return {
      id: i.id,
      documentId: i.documentId,
      status: i.status,
      chunksDone: i.chunksDone,
      chunksTotal: i.chunksTotal,
      chunksEmbedded: i.chunksEmbedded,
      embeddingRequests: i.embeddingRequests,
      unchanged: i.unchanged,
      attempts: i.attempts,
      version: i.version,
      error: i.error,
      sizeBytes: i.sizeBytes,
      createdAt: i.createdAt.toISOString(),
      finishedAt: i.finishedAt?.toISOString() ?? null,
    };
  }
}

/** A document as the API returns it. */
export class DocumentDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) knowledgeBaseId!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ enum: DOCUMENT_CONTENT_TYPES }) contentType!: string;
  @ApiProperty({ type: String, nullable: true }) title!: string | null;
  @ApiProperty({ description: 'Version served by retrieval; 0 = not searchable yet. Grows at every change.' })
  version!: number;
  @ApiProperty({ enum: INGESTION_STATUSES, description: 'Status of the latest upload.' })
  status!: IngestionStatus;
  @ApiProperty({ description: 'Chunks of the served version.' }) chunkCount!: number;
  @ApiProperty({ type: Number, nullable: true, description: 'Bytes of the served version.' }) sizeBytes!:
    | number
    | null;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Why the latest upload failed (an earlier version may still be served).',
  })
  error!: string | null;
  @ApiProperty({ type: IngestionDto, nullable: true, description: "The latest upload's ingestion." })
  ingestion!: IngestionDto | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;

  static from(d: KnowledgeDocument, ingestion: Ingestion | null = null): DocumentDto {
    return {
      id: d.id,
      knowledgeBaseId: d.knowledgeBaseId,
      name: d.name,
      contentType: d.contentType,
      title: d.title,
      version: d.version,
      status: d.status,
      chunkCount: d.chunkCount,
      sizeBytes: d.sizeBytes,
      error: d.error,
      ingestion: ingestion ? IngestionDto.from(ingestion) : null,
      createdAt: d.createdAt.toISOString(),
      updatedAt: d.updatedAt.toISOString(),
    };
  }
}

/** Documents of a knowledge base, by name. */
export class DocumentListDto {
  @ApiProperty({ type: [DocumentDto] }) data!: DocumentDto[];
}

/** A file of an upload that was refused, and why (the others went on). */
export class RejectedUploadDto {
  @ApiProperty() name!: string;
  @ApiProperty({ example: 415, description: 'The status it would have had alone (400, 413, 415).' })
  status!: number;
  @ApiProperty({ example: 'UnsupportedDocumentType' }) code!: string;
  @ApiProperty() detail!: string;
}

/** One accepted file of an upload. */
export class AcceptedUploadDto {
  @ApiProperty() name!: string;
  @ApiProperty({ format: 'uuid' }) documentId!: string;
  @ApiProperty({ format: 'uuid', description: 'Poll GET …/ingestions/:ingestionId (or the document).' })
  ingestionId!: string;
  @ApiProperty({ enum: INGESTION_STATUSES }) status!: IngestionStatus;
  @ApiProperty({ description: 'Same bytes as the served version: ready at once, no job, version unchanged.' })
  unchanged!: boolean;
  @ApiProperty({ description: 'Version served now (the new one, once ingested, is higher).' })
  version!: number;
}

/** Response of an upload: each file accepted (queued) or rejected with its reason. */
export class UploadResponseDto {
  @ApiProperty({ type: [AcceptedUploadDto] }) documents!: AcceptedUploadDto[];
  @ApiProperty({ type: [RejectedUploadDto] }) rejected!: RejectedUploadDto[];
}
