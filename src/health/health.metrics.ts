import { Injectable } from '@nestjs/common';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { MetricsService } from '../observability/metrics.service';

/**
 * `kvchat_draining` (1 from the moment shutdown begins, when readiness turns 503) and
 * `kvchat_in_flight_requests` (what the drain waits for), read at scrape time. Replica health is
 * `kvchat_replica_healthy` (FleetMetricsCollector), which readiness probes keep current.
 */
@Injectable()
export class HealthMetrics {
  constructor(metrics: MetricsService, lifecycle: LifecycleService) {
    metrics.gauge({
      name: 'kvchat_draining',
      help: 'This process is draining before it stops (1): readiness is 503 while in-flight work finishes.',
      labelNames: ['role'],
      collect: (gauge) => gauge.set({ role: lifecycle.role }, lifecycle.draining ? 1 : 0),
    });
    metrics.gauge({
      name: 'kvchat_in_flight_requests',
      help: 'HTTP requests (probes and scrapes excluded) and other tracked work in flight in this process.',
      labelNames: [],
      collect: (gauge) => gauge.set(lifecycle.inFlightCount),
    });
  }
}
