import { Global, Module } from '@nestjs/common';
import { AdmissionMetricsCollector } from './admission-metrics.collector';
import { FleetMetricsCollector } from './fleet-metrics.collector';
import { HttpMetricsHook } from './http-metrics.hook';
import { MetricsPortServer } from './metrics-exposure';
import { MetricsController } from './metrics.controller';
import { MetricsService } from './metrics.service';
import { TracingService } from './tracing.service';
import { TurnTelemetryService } from './turn-telemetry.service';

/**
 * Tracing (Langfuse) and metrics (Prometheus at `GET /metrics`). Global: any module may inject
 * MetricsService (e.g. the response cache records its lookups) or TurnTelemetryService.
 */
@Global()
@Module({
  controllers: [MetricsController],
  providers: [
    MetricsService,
    TracingService,
    TurnTelemetryService,
    HttpMetricsHook,
    FleetMetricsCollector,
    AdmissionMetricsCollector,
    MetricsPortServer,
  ],
  exports: [MetricsService, TracingService, TurnTelemetryService],
})
export class ObservabilityModule {}
