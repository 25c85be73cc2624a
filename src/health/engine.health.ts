import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { EndpointRouter } from '../inference/endpoint-router';

/**
 * At least `minUp` engine replicas answer `GET /v1/models` within the timeout. Every replica's state
 * is in the result either way (`replicas`: up, in-flight requests), with the count `up` of `total`
 * and the `required` minimum; a probe also updates the router's view (kvchat_replica_healthy). One
 * dead replica out of three leaves the process ready: the router skips it and turns still succeed.
 */
@Injectable()
export class EngineHealthIndicator {
  constructor(
    private readonly router: EndpointRouter,
    private readonly health: HealthIndicatorService,
  ) {}

  async isHealthy(key: string, timeoutMs: number, minUp: number): Promise<HealthIndicatorResult> {
    const session = this.health.check(key);
    const results = await Promise.all(
      this.router.replicas.map(async (r) => ({
        replica: r.id,
        up: await this.router.probe(r, timeoutMs),
        inFlight: r.inFlight,
      })),
    );
    const replicas = Object.fromEntries(results.map((r) => [r.replica, { up: r.up, inFlight: r.inFlight }]));
    const up = results.filter((r) => r.up).length;
    const required = Math.min(minUp, results.length);
    const details = { replicas, up, total: results.length, required };
    if (up >= required && (up > 0 || minUp === 0)) return session.up(details);
    const down = results.filter((r) => !r.up).map((r) => r.replica);
    return session.down({
      message: `${up} of ${results.length} engine replicas answer, ${required} required; unreachable: ${down.join(', ')}`,
      ...details,
    });
  }
}
