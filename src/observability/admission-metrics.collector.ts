import { Injectable } from '@nestjs/common';
import { SHED_REASONS, TurnAdmission } from '../lifecycle/turn-admission.service';
import { MetricsService } from './metrics.service';

/**
 * Admission control's counts (src/lifecycle/turn-admission.service.ts), read at scrape time:
 * - `kvchat_turns_shed_total{reason}`: turns refused with 503 `Overloaded` (`queue_full`, `queue_timeout`);
 * - `kvchat_turns_abandoned_in_queue_total`: queued turns whose client left before they started;
 * - `kvchat_turns_in_flight`, `kvchat_turns_queued`: now, against TURNS_MAX_IN_FLIGHT and TURNS_MAX_QUEUED.
 * The two totals are counters of the process (they only grow; use rate()/increase()), exposed from
 * TurnAdmission's own tallies so the lifecycle layer does not depend on metrics.
 */
@Injectable()
export class AdmissionMetricsCollector {
  constructor(metrics: MetricsService, admission: TurnAdmission) {
    metrics.gauge({
      name: 'kvchat_turns_in_flight',
      help: 'Turns holding an admission slot in this process (TURNS_MAX_IN_FLIGHT bounds it).',
      labelNames: [],
      collect: (gauge) => gauge.set(admission.inFlight),
    });
    metrics.gauge({
      name: 'kvchat_turns_queued',
      help: 'Turns waiting for an admission slot in this process (TURNS_MAX_QUEUED bounds it).',
      labelNames: [],
      collect: (gauge) => gauge.set(admission.queued),
    });
    metrics.counterOf({
      name: 'kvchat_turns_shed_total',
      help: 'Turns refused with 503 Overloaded by admission control, by reason (queue_full, queue_timeout).',
      labelNames: ['reason'],
      read: () => SHED_REASONS.map((reason) => ({ labels: { reason }, value: admission.shedTotal[reason] })),
    });
    metrics.counterOf({
      name: 'kvchat_turns_abandoned_in_queue_total',
      help: 'Queued turns whose client went away before a slot was free; they never started.',
      read: () => [{ labels: {}, value: admission.abandonedInQueueTotal }],
    });
  }
}
