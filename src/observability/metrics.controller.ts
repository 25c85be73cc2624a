import { Controller, Get, Headers, NotFoundException, Res, UnauthorizedException } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Public } from '../common/public.decorator';
import { AppConfig } from '../config/app.config';
import { MetricsConfig } from '../config/metrics.config';
import { metricsAuthorized, metricsPlacement } from './metrics-exposure';
import { MetricsService } from './metrics.service';

@ApiTags('observability')
@Public()
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: MetricsService,
    private readonly app: AppConfig,
    private readonly config: MetricsConfig,
  ) {}

  @Get()
  @ApiOperation({
    summary: 'Prometheus metrics',
    description:
      'Prometheus text exposition: HTTP request durations by route, TTFT and ITL by replica, prompt/cached/completion ' +
      'tokens, prefix reuse, response-cache lookups by result, replica health and load, queue depth, Langfuse delivery, ' +
      'and Node.js process metrics. No API key; `Authorization: Bearer <METRICS_BEARER_TOKEN>` when that is set. ' +
      'Served here unless METRICS_PORT moves it to its own port or METRICS_ENABLED turns it off (off by default ' +
      'in production without a port or token). See docs/observability.md.',
  })
  @ApiProduces('text/plain')
  @ApiOkResponse({ description: 'Prometheus text format 0.0.4', schema: { type: 'string' } })
  async scrape(
    @Res({ passthrough: true }) reply: FastifyReply,
    @Headers('authorization') authorization?: string,
  ): Promise<string> {
    // Framework-level refusals (HTTP exceptions are the controller's vocabulary; no service is involved).
    if (metricsPlacement(this.app, this.config) !== 'api') throw new NotFoundException('Cannot GET /metrics');
    if (!metricsAuthorized(this.config, authorization)) {
      void reply.header('www-authenticate', 'Bearer realm="metrics"');
      throw new UnauthorizedException('Send the metrics token as `Authorization: Bearer <token>`.');
    }
    const { contentType, body } = await this.metrics.scrape();
    void reply.header('content-type', contentType);
    return body;
  }
}
