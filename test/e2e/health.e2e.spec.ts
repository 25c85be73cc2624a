import { LifecycleService } from '../../src/lifecycle/lifecycle.service';
import {
  type RunningSimulatorCluster,
  startEngineSimulatorCluster,
} from '../../src/simulator/simulator.server';
import { metricSum, parseMetrics } from '../factories/observability-app';
import { api, startTestApp, type TestApp } from '../factories/test-app';

/** Readiness as Kubernetes uses it: which failures take a pod out of the Service, and which do not. */
describe('health for Kubernetes (e2e)', () => {
  let cluster: RunningSimulatorCluster;
  let app: TestApp;

  const replicaIds = () => cluster.replicas.map((r) => r.baseURL);
  const scrape = async (url: string) => parseMetrics(await (await fetch(`${url}/metrics`)).text());

  beforeAll(async () => {
    cluster = await startEngineSimulatorCluster(3, { timing: { timeScale: 0 } });
    app = await startTestApp({
      INFERENCE_ENDPOINTS: replicaIds().join(','),
      HEALTH_CHECK_TIMEOUT_MS: '1000',
      HEALTH_READY_MIN_ENGINES: '2',
    });
  });

  afterAll(async () => {
    await app?.close();
    await cluster?.close();
  });

  it('should be ready with every replica up, listing each one', async () => {
    const res = await api(`${app.url}/health/ready`);
    expect(res.status).toBe(200);
    expect(res.body.details.engine).toMatchObject({ status: 'up', up: 3, total: 3, required: 2 });
    expect(Object.keys(res.body.details.engine.replicas).sort()).toEqual([...replicaIds()].sort());
    expect(res.body.details.lifecycle).toEqual({ status: 'up', role: 'all' });
  });

  it('should stay ready with one of three replicas dead, naming it in the body and in metrics', async () => {
    const [dead] = replicaIds();
    await cluster.replicas[0].close();

    const res = await api(`${app.url}/health/ready`);
    expect(res.status).toBe(200);
    expect(res.body.details.engine).toMatchObject({ status: 'up', up: 2, total: 3 });
    expect(res.body.details.engine.replicas[dead]).toMatchObject({ up: false });
    const samples = await scrape(app.url);
    expect(metricSum(samples, 'kvchat_replica_healthy', { replica: dead })).toBe(0);
    expect(metricSum(samples, 'kvchat_replica_healthy')).toBe(2);

    // The router skips the dead replica: turns still succeed, which is why the pod stays in the Service.
    const conv = await api(`${app.url}/v1/conversations`, { key: app.keyA, body: { title: 'one down' } });
    const turn = await api(`${app.url}/v1/conversations/${conv.body.id}/turns`, {
      key: app.keyA,
      body: { content: 'Is anyone there?' },
    });
    expect(turn.status).toBe(201);
  });

  it('should not be ready when fewer replicas answer than HEALTH_READY_MIN_ENGINES', async () => {
    await cluster.replicas[1].close();
    const res = await api(`${app.url}/health/ready`);
    expect(res.status).toBe(503);
    expect(res.body.error.engine).toMatchObject({ status: 'down', up: 1, total: 3, required: 2 });
    expect(res.body.error.engine.message).toContain('1 of 3 engine replicas answer, 2 required');
  });

  it('should not be ready when every replica is dead, and stay live', async () => {
    await cluster.replicas[2].close();

    const res = await api(`${app.url}/health/ready`);
    expect(res.status).toBe(503);
    expect(res.body.error.engine).toMatchObject({ status: 'down', up: 0, total: 3 });
    for (const id of replicaIds()) expect(res.body.error.engine.replicas[id]).toMatchObject({ up: false });
    expect(res.body.info.database).toEqual({ status: 'up' });
    expect((await api(`${app.url}/health/live`)).status).toBe(200);
  });

  it('should turn readiness 503 as soon as a drain starts, while liveness and metrics keep answering', async () => {
    const lifecycle = app.running.app.get(LifecycleService);
    expect(metricSum(await scrape(app.url), 'kvchat_draining')).toBe(0);

    lifecycle.beginDrain('SIGTERM');

    const res = await api(`${app.url}/health/ready`);
    expect(res.status).toBe(503);
    expect(res.body.error.lifecycle).toMatchObject({
      status: 'down',
      role: 'all',
      message: 'draining since SIGTERM: shutting down',
    });
    expect(res.body.error.lifecycle.drainLeftMs).toBeGreaterThan(0);
    expect((await api(`${app.url}/health/live`)).status).toBe(200);
    expect(metricSum(await scrape(app.url), 'kvchat_draining', { role: 'all' })).toBe(1);
  });
});
