import { Controller, Get } from '@nestjs/common';
import { ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import {
  HealthCheck,
  type HealthCheckResult,
  HealthCheckService,
  MikroOrmHealthIndicator,
} from '@nestjs/terminus';
import { Public } from '../common/public.decorator';
import { HealthConfig } from '../config/health.config';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { EngineHealthIndicator } from './engine.health';
import { LifecycleHealthIndicator } from './lifecycle.health';
import { QueuesHealthIndicator } from './queues.health';
import { RedisHealthIndicator } from './redis.health';

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
    private readonly drain: LifecycleHealthIndicator,
    private readonly lifecycle: LifecycleService,
    private readonly config: HealthConfig,
  ) {}

  @Get('live')
  @HealthCheck()
  @ApiOperation({
    summary: 'Liveness: the process answers (no dependency is checked, so an outage restarts nothing)',
    description:
      'Also the startup probe: the HTTP server listens only once boot (configuration, database, Redis, ' +
      'migrations when DB_MIGRATE_ON_BOOT) has finished.',
  })
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck()
  @ApiOperation({
    summary:
      'Readiness: not draining; database and Redis reachable; at least HEALTH_READY_MIN_ENGINES engine replicas answer',
    description:
      'Each check has HEALTH_CHECK_TIMEOUT_MS. `lifecycle` is down from the moment shutdown begins (SIGTERM), so the ' +
      "pod leaves the Service while in-flight work finishes. `engine` lists every replica's state, the count `up` " +
      "of `total` and the `required` minimum. The `queues` check reports each Bull queue's depth (`waiting`), " +
      '`active`, `delayed` and kept `failed` jobs and the oldest wait; in a process that takes jobs (KVCHAT_ROLE ' +
      'worker or all) a stalled queue (a job waiting past QUEUE_STALL_SECONDS with nothing active) is not ready.',
  })
  @ApiServiceUnavailableResponse({ description: 'Not ready; `error` names the failing components.' })
  ready(): Promise<HealthCheckResult> {
    const timeout = this.config.HEALTH_CHECK_TIMEOUT_MS;
    return this.health.check([
      () => this.drain.isHealthy('lifecycle'),
      () => this.db.pingCheck('database', { timeout }),
      () => this.redis.isHealthy('redis', timeout),
      () => this.engine.isHealthy('engine', timeout, this.config.HEALTH_READY_MIN_ENGINES),
      () => this.queues.isHealthy('queues', timeout, this.lifecycle.runsJobs),
    ]);
  }
}
