import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Patch, Post } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import type { AuthContext } from '../auth/api-key.service';
import { Auth } from '../auth/auth.guard';
import { ApiProblems } from '../common/api-problems.decorator';
import {
  CreateKnowledgeBaseDto,
  KnowledgeBaseDto,
  KnowledgeBaseListDto,
  UpdateKnowledgeBaseDto,
} from './dto/knowledge-base.dto';
import { SearchDto, SearchResponseDto } from './dto/search.dto';
import { KnowledgeBasesService } from './knowledge-bases.service';
import { RetrievalService } from './retrieval.service';

const uuid = new ParseUUIDPipe({ version: undefined });

@ApiTags('knowledge')
@ApiBearerAuth()
@ApiProblems(401, 429)
@Controller('v1/knowledge-bases')
export class KnowledgeBasesController {
  constructor(
    private readonly knowledgeBases: KnowledgeBasesService,
    private readonly retrieval: RetrievalService,
  ) {}

  @Post()
  @ApiOperation({ summary: 'Create a knowledge base' })
  @ApiCreatedResponse({ type: KnowledgeBaseDto })
  @ApiProblems(400, 409)
  async create(@Auth() auth: AuthContext, @Body() body: CreateKnowledgeBaseDto): Promise<KnowledgeBaseDto> {
    const kb = await this.knowledgeBases.create(auth.tenantId, body);
    return KnowledgeBaseDto.from({ knowledgeBase: kb, documents: 0, searchableDocuments: 0 });
  }

  @Get()
  @ApiOperation({ summary: 'List the knowledge bases of the caller’s tenant' })
  @ApiOkResponse({ type: KnowledgeBaseListDto })
  async list(@Auth() auth: AuthContext): Promise<KnowledgeBaseListDto> {
    return { data: (await this.knowledgeBases.list(auth.tenantId)).map((s) => KnowledgeBaseDto.from(s)) };
  }

  @Get(':id')
  @ApiOperation({ summary: 'Get a knowledge base with its document counts' })
  @ApiOkResponse({ type: KnowledgeBaseDto })
  @ApiProblems(400, 404)
  async get(@Auth() auth: AuthContext, @Param('id', uuid) id: string): Promise<KnowledgeBaseDto> {
    return KnowledgeBaseDto.from(await this.knowledgeBases.describe(auth.tenantId, id));
  }

  @Patch(':id')
  @ApiOperation({ summary: 'Rename or describe a knowledge base' })
  @ApiOkResponse({ type: KnowledgeBaseDto })
  @ApiProblems(400, 404, 409)
  async update(
    @Auth() auth: AuthContext,
    @Param('id', uuid) id: string,
    @Body() body: UpdateKnowledgeBaseDto,
  ): Promise<KnowledgeBaseDto> {
    await this.knowledgeBases.update(auth.tenantId, id, body);
    return KnowledgeBaseDto.from(await this.knowledgeBases.describe(auth.tenantId, id));
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a knowledge base with its documents, chunks and vectors' })
  @ApiNoContentResponse()
  @ApiProblems(400, 404)
  async remove(@Auth() auth: AuthContext, @Param('id', uuid) id: string): Promise<void> {
    await this.knowledgeBases.remove(auth.tenantId, id);
  }

  @Post(':id/search')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Search a knowledge base (hybrid: vector + full text, fused by reciprocal rank fusion)',
    description:
      'Returns the best `k` passages with their document, version, heading path and character offsets. ' +
      '`mode` runs one method alone (for comparison); `rerank` re-orders the fused candidates with the ' +
      'configured reranker. Without pgvector (or while embeddings fail) the search is full-text only and ' +
      '`degraded` says why.',
  })
  @ApiOkResponse({ type: SearchResponseDto })
  @ApiProblems(400, 404)
  async search(
    @Auth() auth: AuthContext,
    @Param('id', uuid) id: string,
    @Body() body: SearchDto,
  ): Promise<SearchResponseDto> {
    await this.knowledgeBases.get(auth.tenantId, id);
    const result = await this.retrieval.retrieve({
      tenantId: auth.tenantId,
      knowledgeBaseIds: [id],
      query: body.query,
      k: body.k,
      mode: body.mode,
      rerank: body.rerank,
    });
    return SearchResponseDto.from(result);
  }
}
