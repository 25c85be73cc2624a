import { Controller, Delete, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { AuthContext } from '../auth/api-key.service';
import { Auth } from '../auth/auth.guard';
import { ApiProblems } from '../common/api-problems.decorator';
import { CacheInvalidationDto, InvalidateCacheQueryDto } from './dto/invalidate-cache.dto';
import { ResponseCacheAdmin } from './response-cache-admin.service';

@ApiTags('cache')
@ApiBearerAuth()
@ApiProblems(401)
@Controller('v1/cache')
export class ResponseCacheController {
  constructor(private readonly admin: ResponseCacheAdmin) {}

  @Delete()
  @ApiOperation({
    summary: 'Invalidate cached answers',
    description:
      "Removes response-cache entries of the key's tenant, narrowed by agent, template version or entry id " +
      '(the fields combine). `tenantId` names another tenant, or `*` for all; both need an admin key.',
  })
  @ApiOkResponse({ type: CacheInvalidationDto })
  @ApiProblems(400, 403)
  invalidate(
    @Auth() auth: AuthContext,
    @Query() query: InvalidateCacheQueryDto,
  ): Promise<CacheInvalidationDto> {
    return this.admin.invalidate(auth, query);
  }
}
