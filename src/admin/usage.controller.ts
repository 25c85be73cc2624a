import { Controller, Get, Headers, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type { AuthContext } from '../auth/api-key.service';
import { Auth, RequireScopes } from '../auth/auth.guard';
import { ApiProblems } from '../common/api-problems.decorator';
import { UsageQueryDto, UsageReportDto } from './dto/usage.dto';
import { UsageReportService } from './usage-report.service';

@ApiTags('usage')
@ApiBearerAuth()
@ApiProblems(401, 403, 429)
@RequireScopes('usage:read')
@Controller('v1/usage')
export class UsageController {
  constructor(private readonly usage: UsageReportService) {}

  @Get()
  @ApiOperation({
    summary: 'Usage and spend from the ledger',
    description:
      'Sums the usage ledger over [`from`, `to`) by `group` (day, key, model or endpoint), with `totals`. ' +
      'With `Accept: text/csv` the rows come as CSV. Records reach the ledger through a queue, normally within a ' +
      'second of the request.',
  })
  @ApiProduces('application/json', 'text/csv')
  @ApiOkResponse({ type: UsageReportDto })
  @ApiProblems(400, 404)
  async get(
    @Auth() auth: AuthContext,
    @Query() query: UsageQueryDto,
    @Headers('accept') accept: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<UsageReportDto | string> {
    const report = await this.usage.report(auth, query);
    if (!(accept ?? '').includes('text/csv')) return report;
    void reply.header('content-type', 'text/csv; charset=utf-8');
    return this.usage.toCsv(report);
  }
}
