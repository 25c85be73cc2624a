import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { AuthContext } from '../auth/api-key.service';
import { Auth } from '../auth/auth.guard';
import { ApiProblems } from '../common/api-problems.decorator';
import { CacheStatsService } from './cache-stats.service';
import { CacheStatsDto, CacheStatsQueryDto } from './dto/cache-stats.dto';

@ApiTags('cache')
@ApiBearerAuth()
@ApiProblems(401)
@Controller('v1/cache')
export class CacheStatsController {
  constructor(private readonly stats: CacheStatsService) {}

  @Get('stats')
  @ApiOperation({
    summary: 'Cache statistics per layer',
    description:
      'KV prefix reuse (engine cached tokens and the backend’s own figure) for the caller’s tenant, one of its ' +
      'conversations (`conversationId`), or every tenant with the engines’ own counters (`scope=global`, admin keys).',
  })
  @ApiOkResponse({ type: CacheStatsDto })
  @ApiProblems(400, 403, 404)
  async get(@Auth() auth: AuthContext, @Query() query: CacheStatsQueryDto): Promise<CacheStatsDto> {
    return this.stats.collect(auth, {
      global: query.scope === 'global',
      conversationId: query.conversationId,
    });
  }
}
