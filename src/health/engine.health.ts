import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { EndpointRouter } from '../inference/endpoint-router';

/** Every engine replica answers `GET /v1/models` within the timeout; down names the failing ones. */
@Injectable()
export class EngineHealthIndicator {
  constructor(
    private readonly router: EndpointRouter,
    private readonly health: HealthIndicatorService,
  ) {}

  async isHealthy(key: string, timeoutMs: number): Promise<HealthIndicatorResult> {
    const session = this.health.check(key);
    const results = await Promise.all(
      this.router.replicas.map(async (r) => ({
        replica: r.id,
        up: await this.router.probe(r, timeoutMs),
        inFlight: r.inFlight,
      })),
    );
    const replicas = Object.fromEntries(results.map((r) => [r.replica, { up: r.up, inFlight: r.inFlight }]));
    const down = results.filter((r) => !r.up).map((r) => r.replica);
    return down.length === 0
      ? session.up({ replicas })
      : session.down({ message: `unreachable engine replicas: ${down.join(', ')}`, replicas });
  }
}
