import { loadConfigClass } from '../config/config.loader';
import { HealthConfig } from '../config/health.config';
import { AppConfig } from '../config/app.config';
import { ProcessConfig } from '../config/process.config';
import { LifecycleService } from './lifecycle.service';

describe('LifecycleService', () => {
  const build = (env: Record<string, string> = {}) =>
    new LifecycleService(loadConfigClass(ProcessConfig, { SHUTDOWN_DRAIN_MS: '60000', ...env }));

  it('should serve, not drain, until a drain begins', () => {
    const sut = build();
    expect(sut.draining).toBe(false);
    expect(sut.drain).toBeNull();
    expect(sut.remainingDrainMs()).toBe(Infinity);
    expect(sut.drainExpired.aborted).toBe(false);
  });

  it('should flip to draining once, with the reason and a deadline SHUTDOWN_DRAIN_MS away', () => {
    const sut = build();
    const before = Date.now();
    sut.beginDrain('SIGTERM');
    sut.beginDrain('SIGINT');
    expect(sut.draining).toBe(true);
    expect(sut.drain?.reason).toBe('SIGTERM');
    expect(sut.drain!.deadline - sut.drain!.startedAt).toBe(60_000);
    expect(sut.drain!.startedAt).toBeGreaterThanOrEqual(before);
    expect(sut.remainingDrainMs(sut.drain!.startedAt + 10_000)).toBe(50_000);
    expect(sut.remainingDrainMs(sut.drain!.startedAt + 90_000)).toBe(0);
    sut.onApplicationShutdown();
  });

  it('should settle as idle when the last tracked work ends during the drain', async () => {
    const sut = build();
    const endA = sut.track();
    const endB = sut.track();
    expect(sut.inFlightCount).toBe(2);
    sut.beginDrain('SIGTERM');
    const settled = sut.settled();
    endA();
    endA(); // ending twice counts once
    expect(sut.inFlightCount).toBe(1);
    endB();
    await expect(settled).resolves.toBe('idle');
    expect(sut.drainExpired.aborted).toBe(false);
    sut.onApplicationShutdown();
  });

  it('should settle at once when nothing is in flight as the drain begins', async () => {
    const sut = build();
    sut.beginDrain('SIGTERM');
    await expect(sut.settled()).resolves.toBe('idle');
    sut.onApplicationShutdown();
  });

  it('should abort drainExpired and settle as expired when the drain time runs out first', async () => {
    const sut = build({ SHUTDOWN_DRAIN_MS: '0' });
    sut.track();
    const settled = sut.settled();
    sut.beginDrain('SIGTERM');
    await expect(settled).resolves.toBe('expired');
    expect(sut.drainExpired.aborted).toBe(true);
    await expect(sut.settled()).resolves.toBe('expired');
  });

  it('should say what the role runs', () => {
    expect([build().runsJobs, build().servesApi]).toEqual([true, true]);
    const api = build({ KVCHAT_ROLE: 'api' });
    expect([api.role, api.runsJobs, api.servesApi]).toEqual(['api', false, true]);
    const worker = build({ KVCHAT_ROLE: 'worker' });
    expect([worker.role, worker.runsJobs, worker.servesApi]).toEqual(['worker', true, false]);
  });
});

describe('deployment configuration', () => {
  it('should read non-default values back', () => {
    expect(
      loadConfigClass(ProcessConfig, { KVCHAT_ROLE: 'worker', SHUTDOWN_DRAIN_MS: '5000' }),
    ).toMatchObject({
      KVCHAT_ROLE: 'worker',
      SHUTDOWN_DRAIN_MS: 5000,
    });
    expect(
      loadConfigClass(HealthConfig, { HEALTH_READY_MIN_ENGINES: '2', HEALTH_CHECK_TIMEOUT_MS: '750' }),
    ).toMatchObject({ HEALTH_READY_MIN_ENGINES: 2, HEALTH_CHECK_TIMEOUT_MS: 750 });
    expect(loadConfigClass(AppConfig, { LOG_PROBE_REQUESTS: 'true' }).LOG_PROBE_REQUESTS).toBe(true);
    expect(loadConfigClass(AppConfig, { LOG_PROBE_REQUESTS: 'false' }).LOG_PROBE_REQUESTS).toBe(false);
  });

  it('should reject an unknown role, naming the variable', () => {
    expect(() => loadConfigClass(ProcessConfig, { KVCHAT_ROLE: 'migrate' })).toThrow(/KVCHAT_ROLE/);
  });
});
