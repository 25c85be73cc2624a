import { FakeEngineAdapter } from '../../test/fakes/fake-engine-adapter';
import type { InferenceConfig } from '../config/inference.config';
import { EndpointRouter, type Replica } from './endpoint-router';
import type { EngineEndpoints } from './engine-endpoints.provider';
import { EngineUnavailable } from './inference.errors';

const URLS = ['http://r0:8000/v1', 'http://r1:8000/v1', 'http://r2:8000/v1', 'http://r3:8000/v1'];

function router(
  policy: InferenceConfig['ROUTER_POLICY'],
  overrides: Partial<InferenceConfig> = {},
  engine = new FakeEngineAdapter(),
): EndpointRouter {
  const endpoints: EngineEndpoints = { baseURLs: URLS, simulated: true, close: () => Promise.resolve() };
  return new EndpointRouter(
    endpoints,
    {
      ROUTER_POLICY: policy,
      ROUTER_SPILL_THRESHOLD: 4,
      ROUTER_PREFIX_MIN_MATCH_TOKENS: 64,
      ROUTER_PREFIX_LOAD_WEIGHT: 0.1,
      ROUTER_PREFIX_CAPACITY_BLOCKS: 10_000,
      ROUTER_HEALTH_INTERVAL_SECONDS: 5,
      INFERENCE_BLOCK_SIZE: 16,
      INFERENCE_TIMEOUT_MS: 1000,
      ...overrides,
    } as InferenceConfig,
    engine,
  );
}

/** A prompt of `n` tokens: a shared system part then conversation-specific tokens. */
const prompt = (conversation: number, n: number, shared = 48): number[] =>
  Array.from({ length: n }, (_, i) => (i < shared ? 7 : 1000 + conversation * 10_000 + i));

const occupy = (replica: Replica, n: number): void => {
  for (let i = 0; i < n; i++) replica.inFlight++;
};

describe('EndpointRouter', () => {
  describe('session policy', () => {
    it('should keep a conversation on the same replica turn after turn', () => {
      const sut = router('session');
      const first = sut.pick({ routingKey: 'conv-1' }).id;

      for (let i = 0; i < 20; i++) expect(sut.pick({ routingKey: 'conv-1' }).id).toBe(first);
    });

    it('should spread conversations over the replicas', () => {
      const sut = router('session');
      const used = new Set(Array.from({ length: 64 }, (_, i) => sut.pick({ routingKey: `conv-${i}` }).id));

      expect(used.size).toBe(URLS.length);
    });

    it('should spill to the least-loaded replica when its replica is far above the mean, and come back after', () => {
      const sut = router('session');
      const home = sut.pick({ routingKey: 'hot' });
      occupy(home, 10);

      const spilled = sut.route({ routingKey: 'hot' });
      home.inFlight = 0;

      expect(spilled.reason).toBe('spill');
      expect(spilled.replica.id).not.toBe(home.id);
      expect(sut.pick({ routingKey: 'hot' }).id).toBe(home.id);
    });

    it('should skip a dead replica and use it again once a probe finds it healthy', async () => {
      const engine = new FakeEngineAdapter();
      const sut = router('session', {}, engine);
      const home = sut.pick({ routingKey: 'conv-9' });
      engine.takeDown(home.id);
      expect(await sut.probe(home)).toBe(false);

      const moved = sut.pick({ routingKey: 'conv-9' });
      engine.bringUp(home.id);
      expect(await sut.probe(home)).toBe(true);

      expect(moved.id).not.toBe(home.id);
      expect(sut.pick({ routingKey: 'conv-9' }).id).toBe(home.id);
    });

    it('should not offer replicas already tried for the request', () => {
      const sut = router('session');
      const tried = new Set(URLS.slice(0, 3));

      expect(sut.pick({ routingKey: 'x', exclude: tried }).id).toBe(URLS[3]);
      expect(() => sut.pick({ routingKey: 'x', exclude: new Set(URLS) })).toThrow(EngineUnavailable);
    });

    it('should fail when every replica is down, and retry them once their failure is older than a probe interval', () => {
      const sut = router('session');
      for (const r of sut.replicas) sut.markUnhealthy(r, 'down');

      expect(() => sut.pick({ routingKey: 'x' })).toThrow(EngineUnavailable);
      for (const r of sut.replicas) r.lastFailureAt = Date.now() - 6000;
      expect(URLS).toContain(sut.pick({ routingKey: 'x' }).id);
    });
  });

  describe('prefix policy', () => {
    it('should send a conversation back to the replica that holds its blocks', () => {
      const sut = router('prefix');
      const first = sut.route({ routingKey: 'c1', promptTokenIds: prompt(1, 300) });
      const second = sut.route({ routingKey: 'c1', promptTokenIds: prompt(1, 500) });

      expect(first.reason).toBe('session');
      expect(second).toMatchObject({ reason: 'prefix', matchedTokens: 288 });
      expect(second.replica.id).toBe(first.replica.id);
    });

    it('should follow the blocks, not the hash, after the conversation moved', () => {
      const sut = router('prefix');
      const home = sut.pick({ routingKey: 'c2', promptTokenIds: prompt(2, 300) });
      occupy(home, 20);
      const moved = sut.route({ routingKey: 'c2', promptTokenIds: prompt(2, 400) });
      home.inFlight = 0;
      const after = sut.route({ routingKey: 'c2', promptTokenIds: prompt(2, 600) });

      expect(moved.reason).toBe('spill');
      expect(moved.replica.id).not.toBe(home.id);
      // Both hold 288+ tokens of it now; the newer replica holds more (the 400-token prompt).
      expect(after.replica.id).toBe(moved.replica.id);
      expect(after.matchedTokens).toBe(400);
    });

    it('should move a conversation off its replica only when the load gap outweighs the matched share', () => {
      const sut = router('prefix');
      const home = sut.pick({ routingKey: 'c3', promptTokenIds: prompt(3, 1000) });
      occupy(home, 5);
      const stays = sut.route({ routingKey: 'c3', promptTokenIds: prompt(3, 1100) });
      occupy(home, 10);
      const leaves = sut.route({ routingKey: 'c3', promptTokenIds: prompt(3, 1200) });

      expect(stays.replica.id).toBe(home.id);
      expect(leaves.replica.id).not.toBe(home.id);
    });

    it('should not let a shared system prompt below the minimum match pin new conversations to one replica', () => {
      const sut = router('prefix');
      const used = new Set<string>();
      for (let c = 0; c < 40; c++)
        used.add(sut.pick({ routingKey: `new-${c}`, promptTokenIds: prompt(c, 80, 48) }).id);

      expect(used.size).toBe(URLS.length);
    });

    it('should spread a hot long prefix once the replica holding it is loaded', () => {
      const sut = router('prefix');
      const picks: Replica[] = [];
      for (let c = 0; c < 30; c++) {
        const r = sut.pick({ routingKey: `hot-${c}`, promptTokenIds: prompt(c, 700, 640) });
        r.inFlight++; // requests stay in flight
        picks.push(r);
      }

      // Matched share 640/700 = 0.91 against 0.1 per request in flight: a replica takes about 10 of them.
      expect(new Set(picks.map((r) => r.id)).size).toBeGreaterThanOrEqual(3);
      expect(Math.max(...sut.replicas.map((r) => r.inFlight))).toBeLessThanOrEqual(10);
    });

    it('should keep tenants apart: the same tokens under another salt match nothing', () => {
      const sut = router('prefix');
      const a = sut.route({ routingKey: 'ta', promptTokenIds: prompt(5, 400), cacheSalt: 'tenant-a' });
      const b = sut.route({ routingKey: 'tb', promptTokenIds: prompt(5, 400), cacheSalt: 'tenant-b' });

      expect(a.reason).toBe('session');
      expect(b.reason).toBe('session');
      expect(b.matchedTokens).toBeUndefined();
    });

    it('should forget what a replica held once it is marked unhealthy', () => {
      const sut = router('prefix');
      const home = sut.pick({ routingKey: 'c6', promptTokenIds: prompt(6, 300) });
      sut.markUnhealthy(home, 'restarted');
      home.healthy = true;

      expect(sut.route({ routingKey: 'c6', promptTokenIds: prompt(6, 400) }).reason).toBe('session');
    });
  });

  it('should rotate with round-robin and pick the emptiest with least-loaded', () => {
    const rr = router('round-robin');
    expect(Array.from({ length: 4 }, () => rr.pick().id)).toEqual(URLS);

    const ll = router('least-loaded');
    for (const [i, r] of ll.replicas.entries()) r.inFlight = 4 - i;
    expect(ll.pick().id).toBe(URLS[3]);
  });

  it('should send side requests to the least-loaded healthy replica without moving the round-robin cursor', () => {
    const sut = router('round-robin');
    sut.replicas[0].inFlight = 2;
    sut.markUnhealthy(sut.replicas[1], 'down');

    expect(sut.pickAny().id).toBe(URLS[2]);
    expect(sut.pickAny(new Set([URLS[2]])).id).toBe(URLS[3]);
    // Chats still rotate from the first healthy replica, as if no side request had been made.
    expect(sut.route().replica.id).toBe(URLS[0]);
  });
});
