import { Controller, HttpCode, Post, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../auth/api-key.service';
import { AccessPolicy } from '../auth/access-policy.service';
import { Auth, RequireScopes } from '../auth/auth.guard';
import { ApiProblems } from '../common/api-problems.decorator';
import { clientDisconnectSignal } from '../common/sse';
import { EmbeddingListDto, EmbeddingRequestDto } from './dto/chat-completion.dto';
import { EmbeddingsProxyService } from './embeddings.service';
import { OpenAiBody } from './openai-body.decorator';

/** OpenAI-compatible `POST /v1/embeddings`: the engine's embedding model behind an exact cache. */
@ApiTags('openai')
@ApiBearerAuth()
@ApiProblems(401, 403, 429)
@RequireScopes('embeddings')
@Controller('v1')
export class EmbeddingsController {
  constructor(
    private readonly embeddings: EmbeddingsProxyService,
    private readonly access: AccessPolicy,
  ) {}

  @Post('embeddings')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Create embeddings (OpenAI-compatible, exact-cached per model and text)',
    description:
      "The engine's embedding model (GET /v1/models lists it). Each text is looked up in the embeddings cache " +
      '(per tenant, model, `dimensions` and exact text; RESPONSE_CACHE_TTL_SECONDS); only the others go to the ' +
      'engine, and `usage.prompt_tokens` counts the tokens it embedded. `encoding_format: base64` sends ' +
      'little-endian float32 bytes. Errors use the OpenAI error shape. kvchat extension: `kvchat.cache` = ' +
      '{hits, misses}. Needs the `embeddings` scope.',
  })
  @ApiBody({ type: EmbeddingRequestDto })
  @ApiOkResponse({ type: EmbeddingListDto })
  @ApiProblems(400, 404, 413, 502, 503)
  async create(
    @Auth() auth: AuthContext,
    @OpenAiBody() body: EmbeddingRequestDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<EmbeddingListDto> {
    this.access.assertModelAllowed(auth, body.model);
    const list = await this.embeddings.embed(auth, {
      model: body.model,
      input: body.input,
      encodingFormat: body.encoding_format ?? 'float',
      dimensions: body.dimensions,
      requestId: String(request.id),
      signal: clientDisconnectSignal(reply),
    });
    void reply.header(
      'x-kvchat-cache',
      list.kvchat.cache.misses === 0 ? 'hit-exact' : list.kvchat.cache.hits > 0 ? 'partial' : 'miss',
    );
    return list;
  }
}
