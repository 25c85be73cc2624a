import { getQueueToken } from '@nestjs/bull';
import type { Queue } from 'bull';
import { AgentRegistry } from '../../src/agents/agent-registry.service';
import { SummariesService } from '../../src/context/summaries/summaries.service';
import { SUMMARIES_QUEUE } from '../../src/context/summaries/summaries.queue';
import { QueuesConfig } from '../../src/config/queues.config';
import { defaultJobOptions } from '../../src/queues/queue-options';
import {
  startEngineSimulator,
  startEngineSimulatorCluster,
  type RunningSimulator,
  type RunningSimulatorCluster,
} from '../../src/simulator/simulator.server';
import { api, startTestApp, type TestApp } from '../factories/test-app';

const BLOCK = 16;

/** Distinct, deterministic user messages of about 25 tokens. */
const question = (i: number): string =>
  `Question ${i}: how does the ${['prefix', 'KV', 'block', 'chunk', 'router'][i % 5]} cache behave when ` +
  `a conversation reaches turn ${i} and the history keeps growing with every answer?`;

/** The turn response (the answer's usage and cache report are the assistant message's). */
interface Turn {
  userMessage: { tokenCount: number | null; content: string };
  assistantMessage: { replica: string; templateVersion: string; tokenCount: number | null } & TurnFigures;
}

interface TurnFigures {
  usage: { promptTokens: number; cachedTokens: number; completionTokens: number };
  cache: {
    cachedTokens: number;
    backendReusableTokens: number;
    window: {
      policy: string;
      budget: number;
      compacted: boolean;
      droppedThroughSequence: number;
      summaryThroughSequence?: number;
    };
    router?: { policy: string; reason: string; attempts: number };
  };
}

/** A conversation pinned to the assistant agent, so intent routing never switches its prefix. */
async function conversation(sut: TestApp, key: string, body: object = {}): Promise<string> {
  const res = await api(`${sut.url}/v1/conversations`, {
    key,
    body: { title: 'kv', agent: 'assistant', ...body },
  });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

async function turn(sut: TestApp, key: string, id: string, content: string, maxTokens = 32): Promise<Turn> {
  const res = await api<Turn>(`${sut.url}/v1/conversations/${id}/turns`, {
    key,
    body: { content, maxTokens },
  });
  expect(res.status).toBe(201);
  return res.body;
}

/**
 * KV-cache-aware conversations end to end: the app on a real port, the simulator (separate servers
 * this suite controls) as the engine, real Redis and Bull, PGlite.
 */
describe('KV-cache-aware conversations (e2e)', () => {
  describe('one replica, a 1024-token window, the compact policy', () => {
    let sim: RunningSimulator;
    let sut: TestApp;
    let adminKey: string;

    beforeAll(async () => {
      sim = await startEngineSimulator({ timing: { timeScale: 0 }, replyTokens: { min: 24, max: 48 } });
      sut = await startTestApp({
        INFERENCE_ENDPOINTS: sim.baseURL,
        INFERENCE_MAX_CONTEXT_TOKENS: '1024',
        INFERENCE_DEFAULT_MAX_TOKENS: '64',
        // These tests are about the engine's KV cache: no answer may come from the response cache.
        RESPONSE_CACHE_ENABLED: 'false',
      });
      adminKey = (await sut.keys.create(`admin-${Date.now()}`, { admin: true })).key;
    });

    afterAll(async () => {
      await sut?.close();
      await sim?.close();
    });

    it('should keep the prompt prefix byte-identical, so each turn reuses all of the previous prompt', async () => {
      const id = await conversation(sut, sut.keyA);
      const turns: Turn[] = [];
      for (let i = 1; i <= 5; i++) turns.push(await turn(sut, sut.keyA, id, question(i)));

      for (let i = 1; i < turns.length; i++) {
        const previous = turns[i - 1].assistantMessage.usage.promptTokens;
        // The engine reuses the previous prompt and its answer up to the last full block: only a prefix
        // that repeats byte for byte (system prompt, replayed user messages with their date) hits.
        expect(turns[i].assistantMessage.usage.cachedTokens).toBeGreaterThanOrEqual(previous - BLOCK);
        expect(turns[i].assistantMessage.cache.backendReusableTokens).toBe(
          Math.floor(previous / BLOCK) * BLOCK,
        );
        expect(turns[i].assistantMessage.cache.window).toMatchObject({
          policy: 'compact',
          compacted: false,
          droppedThroughSequence: 0,
        });
      }
      expect(new Set(turns.map((t) => t.assistantMessage.templateVersion)).size).toBe(1);
      expect(turns[0].assistantMessage.templateVersion).toMatch(/^global@\d+\+assistant@\d+$/);
      expect(turns[0].userMessage.tokenCount).toBeGreaterThan(20);
      expect(turns[0].userMessage.content).toBe(question(1));
    });

    it('should compact only when the window is full, and only then recompute the history', async () => {
      const id = await conversation(sut, sut.keyA);
      const turns: Turn[] = [];
      for (let i = 1; i <= 22; i++) turns.push(await turn(sut, sut.keyA, id, question(i), 48));
      const budget = turns[0].assistantMessage.cache.window.budget;
      const compactions = turns
        .map((t, i) => (t.assistantMessage.cache.window.compacted ? i : -1))
        .filter((i) => i >= 0);

      expect(budget).toBe(1024 - 48);
      for (const t of turns) expect(t.assistantMessage.usage.promptTokens + 48).toBeLessThanOrEqual(1024);
      expect(compactions.length).toBeGreaterThanOrEqual(1);
      for (let i = 1; i < turns.length; i++) {
        if (compactions.includes(i)) {
          // Old turns were dropped: only the stable system prompt is still a cached prefix.
          expect(turns[i].assistantMessage.usage.cachedTokens).toBeLessThan(
            turns[i - 1].assistantMessage.usage.promptTokens / 4,
          );
          expect(turns[i].assistantMessage.usage.promptTokens).toBeLessThanOrEqual(budget * 0.6);
        } else {
          expect(turns[i].assistantMessage.usage.cachedTokens).toBeGreaterThanOrEqual(
            turns[i - 1].assistantMessage.usage.promptTokens - BLOCK,
          );
        }
      }
    });

    it('should give two tenants with the same prompt no shared cached tokens', async () => {
      const content =
        'Tenant isolation check: summarize the plot of a long novel about caches in three sentences.';
      await turn(sut, sut.keyA, await conversation(sut, sut.keyA), content);
      const againA = await turn(sut, sut.keyA, await conversation(sut, sut.keyA), content);
      const firstB = await turn(sut, sut.keyB, await conversation(sut, sut.keyB), content);
      const againB = await turn(sut, sut.keyB, await conversation(sut, sut.keyB), content);

      // Same tenant, same prompt: everything but the last block is served from the cache.
      expect(againA.assistantMessage.usage.cachedTokens).toBeGreaterThanOrEqual(
        againA.assistantMessage.usage.promptTokens - BLOCK,
      );
      // Another tenant's identical prompt: its cache salt differs, so not a single block is shared.
      expect(firstB.assistantMessage.usage.promptTokens).toBe(againA.assistantMessage.usage.promptTokens);
      expect(firstB.assistantMessage.usage.cachedTokens).toBe(0);
      expect(againB.assistantMessage.usage.cachedTokens).toBeGreaterThan(0);
    });

    it.each([['cache_salt'], ['cacheSalt']])(
      'should reject a client-supplied %s with a 400 naming the field',
      async (field) => {
        const id = await conversation(sut, sut.keyA);
        const onTurn = await api(`${sut.url}/v1/conversations/${id}/turns`, {
          key: sut.keyA,
          body: { content: 'hi', [field]: 'attacker-chosen-salt' },
        });
        const onCreate = await api(`${sut.url}/v1/conversations`, {
          key: sut.keyA,
          body: { title: 'x', [field]: 'salt' },
        });

        for (const res of [onTurn, onCreate]) {
          expect(res.status).toBe(400);
          expect(res.headers.get('content-type')).toContain('application/problem+json');
          expect(res.body.detail).toContain(`property ${field} should not exist`);
        }
      },
    );

    it('should report prefix reuse per conversation, per tenant, and across tenants only for an admin key', async () => {
      const id = await conversation(sut, sut.keyB);
      for (let i = 1; i <= 3; i++) await turn(sut, sut.keyB, id, question(100 + i));

      const one = await api(`${sut.url}/v1/cache/stats?conversationId=${id}`, { key: sut.keyB });
      const tenantB = await api(`${sut.url}/v1/cache/stats`, { key: sut.keyB });
      const foreign = await api(`${sut.url}/v1/cache/stats?conversationId=${id}`, { key: sut.keyA });
      const forbidden = await api(`${sut.url}/v1/cache/stats?scope=global`, { key: sut.keyB });
      const global = await api(`${sut.url}/v1/cache/stats?scope=global`, { key: adminKey });

      expect(one.status).toBe(200);
      expect(one.body.scope).toMatchObject({ kind: 'tenant', conversationId: id });
      expect(one.body.layers.prefix).toMatchObject({
        conversations: 1,
        all: { turns: 3 },
        laterTurns: { turns: 2 },
      });
      expect(one.body.layers.prefix.laterTurns.prefixReuse).toBeGreaterThan(0.5);
      expect(one.body.layers.prefix.laterTurns.backendPrefixReuse).toBeGreaterThan(0.5);
      expect(one.body.layers.engine).toBeUndefined();
      expect(tenantB.body.layers.prefix.all.turns).toBe(one.body.layers.prefix.all.turns + 2);
      expect(foreign.status).toBe(404);
      expect(forbidden.status).toBe(403);
      expect(global.status).toBe(200);
      expect(global.body.layers.prefix.all.turns).toBeGreaterThan(tenantB.body.layers.prefix.all.turns);
      const [replica] = global.body.layers.engine.replicas;
      expect(replica).toMatchObject({ replica: sim.baseURL, healthy: true });
      expect(replica.counters.prefixCacheQueriedTokens).toBeGreaterThan(0);
      expect(replica.counters.prefixCacheHitTokens).toBeGreaterThan(0);
      expect(replica.counters.lmcache.requestedTokens).toBeGreaterThan(0);
    });
  });

  describe('the summary policy', () => {
    let sim: RunningSimulator;
    let sut: TestApp;

    beforeAll(async () => {
      sim = await startEngineSimulator({ timing: { timeScale: 0 }, replyTokens: { min: 24, max: 48 } });
      sut = await startTestApp({
        INFERENCE_ENDPOINTS: sim.baseURL,
        INFERENCE_MAX_CONTEXT_TOKENS: '1024',
        CONTEXT_POLICY: 'summary',
        CONTEXT_SUMMARY_MAX_TOKENS: '64',
        CONTEXT_SUMMARY_WAIT_MS: '20000',
        RESPONSE_CACHE_ENABLED: 'false',
      });
    });

    afterAll(async () => {
      await sut?.close();
      await sim?.close();
    });

    it('should fold old turns into a summary the summarizer agent wrote through the summaries queue, placed after the stable prefix', async () => {
      const id = await conversation(sut, sut.keyA);
      const turns: Turn[] = [];
      for (let i = 1; i <= 24; i++) turns.push(await turn(sut, sut.keyA, id, question(i), 48));
      const summarized = turns.filter(
        (t) =>
          t.assistantMessage.cache.window.compacted && t.assistantMessage.cache.window.summaryThroughSequence,
      );
      const latest = await sut.running.app.get(SummariesService).latest(sut.tenantA, id);
      const queue = sut.running.app.get<Queue>(getQueueToken(SUMMARIES_QUEUE));
      const completed = await queue.getCompleted();
      const summarizer = sut.running.app.get(AgentRegistry).require('summarizer');

      for (const t of turns) expect(t.assistantMessage.usage.promptTokens + 48).toBeLessThanOrEqual(1024);
      expect(summarized.length).toBeGreaterThanOrEqual(1);
      expect(latest?.throughSequence).toBeGreaterThanOrEqual(
        summarized[0].assistantMessage.cache.window.summaryThroughSequence ?? 0,
      );
      expect(latest?.content.length).toBeGreaterThan(0);
      // Written by the summarizer agent's prompt, and stored by a job of the summaries queue.
      expect(latest?.templateVersion).toBe(summarizer.prefix.templateVersion);
      expect(latest?.templateVersion).toMatch(/^global@\d+\+summarizer@\d+$/);
      expect(completed.map((job) => (job.returnvalue as { summaryId: string | null }).summaryId)).toContain(
        latest?.id,
      );
      // The queue has the shared defaults: bounded attempts with exponential backoff.
      const { attempts, backoff } = defaultJobOptions(sut.running.app.get(QueuesConfig));
      expect(completed[0].opts).toMatchObject({ attempts, backoff });
      // Between compactions the prompt only grows: the summary stays byte-identical.
      for (let i = 1; i < turns.length; i++) {
        if (!turns[i].assistantMessage.cache.window.compacted) {
          expect(turns[i].assistantMessage.usage.cachedTokens).toBeGreaterThanOrEqual(
            turns[i - 1].assistantMessage.usage.promptTokens - BLOCK,
          );
        }
      }
    });
  });

  describe('three replicas behind the prefix router', () => {
    let cluster: RunningSimulatorCluster;
    let sut: TestApp;

    beforeAll(async () => {
      cluster = await startEngineSimulatorCluster(3, {
        timing: { timeScale: 0 },
        replyTokens: { min: 24, max: 48 },
      });
      sut = await startTestApp({
        INFERENCE_ENDPOINTS: cluster.replicas.map((r) => r.baseURL).join(','),
        ROUTER_POLICY: 'prefix',
        ROUTER_PREFIX_MIN_MATCH_TOKENS: '64',
        ROUTER_HEALTH_INTERVAL_SECONDS: '60',
        RESPONSE_CACHE_ENABLED: 'false',
      });
    });

    afterAll(async () => {
      await sut?.close();
      await cluster?.close();
    });

    it('should keep a conversation on its replica and move it once when that replica dies', async () => {
      const id = await conversation(sut, sut.keyA);
      const before: Turn[] = [];
      for (let i = 1; i <= 4; i++) before.push(await turn(sut, sut.keyA, id, question(i)));
      const home = before[0].assistantMessage.replica;
      await cluster.replicas.find((r) => r.baseURL === home)?.close();

      const after: Turn[] = [];
      for (let i = 5; i <= 8; i++) after.push(await turn(sut, sut.keyA, id, question(i)));

      expect(new Set(before.map((t) => t.assistantMessage.replica))).toEqual(new Set([home]));
      expect(before.slice(1).every((t) => t.assistantMessage.cache.router?.reason === 'prefix')).toBe(true);
      // The first turn after the crash found the replica unreachable and was retried on another one.
      expect(after[0].assistantMessage.cache.router?.attempts).toBe(2);
      expect(after[0].assistantMessage.replica).not.toBe(home);
      // Then the conversation stays where its blocks now are, and reuses them again.
      expect(new Set(after.map((t) => t.assistantMessage.replica)).size).toBe(1);
      expect(after[2].assistantMessage.usage.cachedTokens).toBeGreaterThanOrEqual(
        after[1].assistantMessage.usage.promptTokens - BLOCK,
      );
    });
  });
});
