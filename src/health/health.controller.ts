import { Controller, Get } from '@nestjs/common';
import { ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import {
  HealthCheck,
  type HealthCheckResult,
  HealthCheckService,
  MikroOrmHealthIndicator,
} from '@nestjs/terminus';
import { Public } from '../auth/auth.guard';
import { EngineHealthIndicator } from './engine.health';
import { QueuesHealthIndicator } from './queues.health';
import { RedisHealthIndicator } from './redis.health';

/** Timeout of each readiness check, ms. */
const CHECK_TIMEOUT_MS = 2000;

@ApiTags('health')
@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly db: MikroOrmHealthIndicator,
    private readonly redis: RedisHealthIndicator,
    private readonly engine: EngineHealthIndicator,
    private readonly queues: QueuesHealthIndicator,
  ) {}

  @Get('live')
  @HealthCheck()
  @ApiOperation({ summary: 'Liveness: the process answers (no dependencies checked)' })
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck()
  @ApiOperation({
    summary: 'Readiness: database, Redis, every engine replica and the job queues, each with a timeout',
    description:
      "The `queues` check reports each Bull queue's depth (`waiting`), `active`, `delayed` and kept `failed` jobs " +
      'and the oldest wait; a stalled queue (a job waiting past QUEUE_STALL_SECONDS with nothing active) is not ready.',
  })
  @ApiServiceUnavailableResponse({ description: 'Not ready; `error` names the failing components.' })
  ready(): Promise<HealthCheckResult> {
    return this.health.check([
      () => this.db.pingCheck('database', { timeout: CHECK_TIMEOUT_MS }),
      () => this.redis.isHealthy('redis', CHECK_TIMEOUT_MS),
      () => this.engine.isHealthy('engine', CHECK_TIMEOUT_MS),
      () => this.queues.isHealthy('queues', CHECK_TIMEOUT_MS),
    ]);
  }
}
