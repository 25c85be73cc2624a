import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { LifecycleService } from '../lifecycle/lifecycle.service';

/**
 * Not draining. Down from the moment shutdown begins, so the orchestrator stops routing new traffic
 * here while what is in flight finishes (`drainingSinceMs`, `drainLeftMs`, `inFlight` in the body).
 */
@Injectable()
export class LifecycleHealthIndicator {
  constructor(
    private readonly lifecycle: LifecycleService,
    private readonly health: HealthIndicatorService,
  ) {}

  isHealthy(key: string): HealthIndicatorResult {
    const session = this.health.check(key);
    const drain = this.lifecycle.drain;
    if (!drain) return session.up({ role: this.lifecycle.role });
    const now = Date.now();
    return session.down({
      message: `draining since ${drain.reason}: shutting down`,
      role: this.lifecycle.role,
      drainingSinceMs: now - drain.startedAt,
      drainLeftMs: this.lifecycle.remainingDrainMs(now),
      inFlight: this.lifecycle.inFlightCount,
    });
  }
}
