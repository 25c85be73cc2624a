import {
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  ParseUUIDPipe,
  Post,
  Req,
  ValidationPipe,
} from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBearerAuth,
  ApiBody,
  ApiConsumes,
  ApiExtraModels,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import type { AuthContext } from '../auth/api-key.service';
import { Auth } from '../auth/auth.guard';
import { ApiProblems } from '../common/api-problems.decorator';
import { DomainError } from '../common/domain-error';
import { PROBLEM_STATUSES } from '../common/problem-statuses';
import { KnowledgeConfig } from '../config/knowledge.config';
import { DocumentFetcher } from './document-fetcher';
import { DocumentsService, type DocumentUpload } from './documents.service';
import {
  AcceptedUploadDto,
  DocumentDto,
  DocumentListDto,
  IngestionDto,
  UploadDocumentDto,
  UploadResponseDto,
} from './dto/document.dto';
import { DocumentTooLarge, InvalidDocument, UploadRejected } from './knowledge.errors';

const uuid = new ParseUUIDPipe({ version: undefined });
const validation = new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true });

/** @fastify/multipart's errors that concern one file or the request's size. */
function multipartLimit(e: unknown): string | null {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'FST_REQ_FILE_TOO_LARGE' || code === 'FST_FILES_LIMIT' || code === 'FST_PARTS_LIMIT'
    ? String(code)
    : null;
}

@ApiTags('knowledge')
@ApiBearerAuth()
@ApiProblems(401, 429)
@ApiExtraModels(UploadDocumentDto)
@Controller('v1/knowledge-bases/:id')
export class DocumentsController {
  constructor(
    private readonly documents: DocumentsService,
    private readonly fetcher: DocumentFetcher,
    private readonly config: KnowledgeConfig,
  ) {}

  @Post('documents')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Upload documents (multipart files, JSON content, or an allow-listed URL)',
    description:
      'Each file becomes a document named after it (re-uploading a name replaces that document) and is ' +
      'queued for ingestion (parse -> chunk -> embed -> store); poll the document or its ingestion. ' +
      'Markdown, plain text, HTML and PDF are read. A file over KNOWLEDGE_MAX_DOCUMENT_BYTES is refused ' +
      'with 413 and an unknown type with 415; in a multipart upload of several files the refused ones are ' +
      'listed in `rejected` and the others go on (the request fails only when every file is refused). ' +
      'A malformed file (a broken PDF, no text) is accepted and its ingestion fails with the reason. ' +
      'JSON bodies are bounded by BODY_LIMIT_BYTES: send large files as multipart/form-data.',
  })
  @ApiConsumes('multipart/form-data', 'application/json')
  @ApiBody({
    schema: {
      // What a client sampling the OpenAPI document sends: a small Markdown document as JSON.
      example: {
        name: 'tents/x4.md',
        contentType: 'text/markdown',
        content: '# X4 Tent\n\nSleeps four people.',
      },
      oneOf: [
        { $ref: getSchemaPath(UploadDocumentDto) },
        {
          type: 'object',
          properties: { file: { type: 'array', items: { type: 'string', format: 'binary' } } },
        },
      ],
    },
  })
  @ApiAcceptedResponse({ type: UploadResponseDto })
  @ApiProblems(400, 403, 404, 413, 415, 502, 503)
  async upload(
    @Auth() auth: AuthContext,
    @Param('id', uuid) id: string,
    @Req() request: FastifyRequest,
  ): Promise<UploadResponseDto> {
    const response: UploadResponseDto = { documents: [], rejected: [] };
    let firstRejection: DomainError | undefined;
    const reject = (name: string, e: DomainError): void => {
      firstRejection ??= e;
      response.rejected.push({
        name,
        status: PROBLEM_STATUSES[e.code],
        code: e.code,
        detail: e.message,
      });
    };
    const accept = async (upload: DocumentUpload): Promise<void> => {
      try {
        const { document, ingestion, unchanged } = await this.documents.upload(auth.tenantId, id, upload);
        response.documents.push({
          name: document.name,
          documentId: document.id,
          ingestionId: ingestion.id,
          status: ingestion.status,
          unchanged,
          version: document.version,
        } satisfies AcceptedUploadDto);
      } catch (e) {
        // Per-file problems are reported per file; anything else (no such knowledge base, queue down) fails the request.
        if (
          e instanceof DomainError &&
          ['InvalidDocument', 'DocumentTooLarge', 'UnsupportedDocumentType'].includes(e.code)
        ) {
          reject(upload.name, e);
        } else {
          throw e;
        }
      }
    };

    if (request.isMultipart()) {
      await this.readMultipart(request, accept, reject);
    } else {
      const body = (await validation.transform(request.body ?? {}, {
        type: 'body',
        metatype: UploadDocumentDto,
      })) as UploadDocumentDto;
      await accept(await this.fromJson(body));
    }
    if (response.documents.length === 0) {
      if (!firstRejection)
        throw new InvalidDocument('The upload holds no file (send multipart/form-data file parts).');
      throw new UploadRejected(firstRejection.code, firstRejection.message, response.rejected);
    }
    return response;
  }

  private async fromJson(body: UploadDocumentDto): Promise<DocumentUpload> {
    if (body.url !== undefined && body.content !== undefined) {
      throw new InvalidDocument('Send either content or url, not both.', { field: 'url' });
    }
    if (body.url !== undefined) {
      const fetched = await this.fetcher.fetch(body.url);
      return {
        name: body.name ?? fetched.fileName,
        contentType: body.contentType ?? fetched.contentType,
        bytes: fetched.bytes,
      };
    }
    return {
      name: body.name ?? '',
      contentType: body.contentType,
      bytes: Buffer.from(body.content ?? '', body.encoding === 'base64' ? 'base64' : 'utf8'),
    };
  }

  /** Each file part in turn: read up to the size limit, then uploaded; a file over the limit is rejected alone. */
  private async readMultipart(
    request: FastifyRequest,
    accept: (upload: DocumentUpload) => Promise<void>,
    reject: (name: string, e: DomainError) => void,
  ): Promise<void> {
    const limit = this.config.KNOWLEDGE_MAX_DOCUMENT_BYTES;
    const parts = request.parts({
      limits: { fileSize: limit, files: this.config.KNOWLEDGE_MAX_FILES_PER_UPLOAD },
    });
    try {
      for await (const part of parts) {
        if (part.type !== 'file') continue;
        let bytes: Buffer;
        try {
          bytes = await part.toBuffer();
        } catch (e) {
          if (multipartLimit(e) !== 'FST_REQ_FILE_TOO_LARGE') throw e;
          reject(
            part.filename,
            new DocumentTooLarge(`${part.filename} is over KNOWLEDGE_MAX_DOCUMENT_BYTES (${limit} bytes).`, {
              limitBytes: limit,
            }),
          );
          continue;
        }
        await accept({ name: part.filename, contentType: part.mimetype, bytes });
      }
    } catch (e) {
      const code = multipartLimit(e);
      if (!code) throw e;
      // A file over the size limit was rejected above; the parser reports it again when it ends.
      if (code === 'FST_REQ_FILE_TOO_LARGE') return;
      reject(
        '(the remaining files)',
        new DocumentTooLarge(
          `An upload holds at most KNOWLEDGE_MAX_FILES_PER_UPLOAD (${this.config.KNOWLEDGE_MAX_FILES_PER_UPLOAD}) files; ` +
            'the files after that were not read.',
          { limitFiles: this.config.KNOWLEDGE_MAX_FILES_PER_UPLOAD },
        ),
      );
    }
  }

  @Get('documents')
  @ApiOperation({ summary: 'List the documents of a knowledge base, by name' })
  @ApiOkResponse({ type: DocumentListDto })
  @ApiProblems(400, 404)
  async list(@Auth() auth: AuthContext, @Param('id', uuid) id: string): Promise<DocumentListDto> {
    return { data: (await this.documents.list(auth.tenantId, id)).map((d) => DocumentDto.from(d)) };
  }

  @Get('documents/:docId')
  @ApiOperation({ summary: 'A document: served version, status and progress of its latest upload' })
  @ApiOkResponse({ type: DocumentDto })
  @ApiProblems(400, 404)
  async get(
    @Auth() auth: AuthContext,
    @Param('id', uuid) id: string,
    @Param('docId', uuid) docId: string,
  ): Promise<DocumentDto> {
    const { document, ingestion } = await this.documents.get(auth.tenantId, id, docId);
    return DocumentDto.from(document, ingestion);
  }

  @Delete('documents/:docId')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a document with its chunks (no longer served from this moment)' })
  @ApiNoContentResponse()
  @ApiProblems(400, 404)
  async remove(
    @Auth() auth: AuthContext,
    @Param('id', uuid) id: string,
    @Param('docId', uuid) docId: string,
  ): Promise<void> {
    await this.documents.remove(auth.tenantId, id, docId);
  }

  @Get('ingestions/:jobId')
  @ApiOperation({ summary: 'An ingestion (the queue job of one upload): status, chunks done/total, error' })
  @ApiOkResponse({ type: IngestionDto })
  @ApiProblems(400, 404)
  async ingestion(
    @Auth() auth: AuthContext,
    @Param('id', uuid) id: string,
    @Param('jobId', uuid) jobId: string,
  ): Promise<IngestionDto> {
    return IngestionDto.from(await this.documents.ingestion(auth.tenantId, id, jobId));
  }
}
