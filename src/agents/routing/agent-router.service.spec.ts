import { routableAgent, sampleAgents } from '../../../test/factories/agents';
import { AgentsConfig } from '../../config/agents.config';
import type { AgentRegistry } from '../agent-registry.service';
import type { RegisteredAgent } from '../chat-agent';
import { AgentRouter, type RouteRequest } from './agent-router.service';
import type { IntentClassification, IntentClassifier, RoutableAgent } from './intent-classifier';

/** A classifier returning fixed scores (or failing), recording its calls. */
function fixedClassifier(scores: IntentClassification['scores'] | Error) {
  const calls: { text: string; agents: readonly RoutableAgent[] }[] = [];
  const classifier: IntentClassifier = {
    classify: (text, agents) => {
      calls.push({ text, agents });
      return scores instanceof Error
        ? Promise.reject(scores)
        : Promise.resolve({ classifier: 'embedding', scores });
    },
  };
  return { classifier, calls };
}

function registryOf(agents: RoutableAgent[]): AgentRegistry {
  const all = [routableAgent('assistant', []), ...agents] as unknown as RegisteredAgent[];
  const routable = all.filter((a) => a.examples.length > 0);
  return {
    get: (name: string) => all.find((a) => a.name === name),
    routable: () => routable,
  } as unknown as AgentRegistry;
}

/** The decision of `sut.route` (its embedding aside). */
const route = (sut: AgentRouter, request: RouteRequest, signal?: AbortSignal) =>
  sut.route(request, signal).then((routed) => routed.route);

describe('AgentRouter', () => {
  const config = Object.assign(new AgentsConfig(), { AGENT_ROUTING_FLOOR: 0.4, AGENT_FALLBACK: 'assistant' });
  const build = (scores: IntentClassification['scores'] | Error, agents = sampleAgents()) => {
    const { classifier, calls } = fixedClassifier(scores);
    return { sut: new AgentRouter(registryOf(agents), classifier, config), calls };
  };

  it('should answer with the pinned agent without asking the classifier', async () => {
    const { sut, calls } = build([]);
    await expect(route(sut, { pinnedAgent: 'weather', userMessage: 'book a flight' })).resolves.toEqual({
      agent: 'weather',
      score: 1,
      classifier: 'pinned',
    });
    expect(calls).toHaveLength(0);
  });

  it('should route by intent when the pinned agent is no longer registered, and say so', async () => {
    const { sut } = build([{ agent: 'travel', score: 0.7 }]);
    await expect(route(sut, { pinnedAgent: 'retired', userMessage: 'book a flight' })).resolves.toMatchObject(
      {
        agent: 'travel',
        reason: 'pinned-agent-unknown',
      },
    );
  });

  it('should pick the best agent when its score reaches the floor, keeping the top 3 candidates', async () => {
    const { sut, calls } = build([
      { agent: 'travel', score: 0.71234 },
      { agent: 'billing', score: 0.2 },
      { agent: 'weather', score: 0.1 },
      { agent: 'extra', score: 0.05 },
    ]);
    const decision = await route(sut, { pinnedAgent: null, userMessage: 'book a flight' });
    expect(decision).toEqual({
      agent: 'travel',
      score: 0.7123,
      classifier: 'embedding',
      floor: 0.4,
      candidates: [
        { agent: 'travel', score: 0.7123 },
        { agent: 'billing', score: 0.2 },
        { agent: 'weather', score: 0.1 },
      ],
    });
    expect(calls[0].agents.map((a) => a.name)).toEqual(['travel', 'billing', 'weather']);
  });

  it('should never pick an agent that is ineligible for the turn, but still honour it when pinned', async () => {
    const { sut, calls } = build([
      { agent: 'travel', score: 0.9 },
      { agent: 'billing', score: 0.6 },
      { agent: 'weather', score: 0.3 },
    ]);
    const decision = await route(sut, { pinnedAgent: null, userMessage: 'x', ineligible: ['travel'] });
    expect(decision).toMatchObject({
      agent: 'billing',
      score: 0.6,
      candidates: [
        { agent: 'billing', score: 0.6 },
        { agent: 'weather', score: 0.3 },
      ],
    });
    // The classifier sees the same agent list every turn (its index is built once per list).
    expect(calls[0].agents.map((a) => a.name)).toEqual(['travel', 'billing', 'weather']);
    const below = await route(sut, {
      pinnedAgent: null,
      userMessage: 'x',
      ineligible: ['travel', 'billing'],
    });
    expect(below).toMatchObject({ agent: 'assistant', fallback: true, reason: 'below-floor' });
    await expect(
      route(sut, { pinnedAgent: 'travel', userMessage: 'x', ineligible: ['travel'] }),
    ).resolves.toMatchObject({ agent: 'travel', classifier: 'pinned' });
  });

  it('should fall back below the floor, recording the best score', async () => {
    const { sut } = build([{ agent: 'travel', score: 0.39 }]);
    await expect(route(sut, { pinnedAgent: null, userMessage: 'hello' })).resolves.toMatchObject({
      agent: 'assistant',
      score: 0.39,
      classifier: 'embedding',
      fallback: true,
      reason: 'below-floor',
      candidates: [{ agent: 'travel', score: 0.39 }],
    });
  });

  it('should fall back without failing the turn when the classifier is unavailable', async () => {
    const { sut } = build(new Error('embeddings down'));
    await expect(route(sut, { pinnedAgent: null, userMessage: 'hello' })).resolves.toEqual({
      agent: 'assistant',
      score: 0,
      classifier: 'default',
      fallback: true,
      reason: 'classifier-unavailable',
    });
  });

  it('should hand over the message embedding the classifier computed, and none for a pinned agent', async () => {
    const classifier: IntentClassifier = {
      classify: () =>
        Promise.resolve({
          classifier: 'embedding',
          scores: [{ agent: 'travel', score: 0.9 }],
          embedding: [0.6, 0.8],
        }),
    };
    const sut = new AgentRouter(registryOf(sampleAgents()), classifier, config);
    await expect(sut.route({ pinnedAgent: null, userMessage: 'book a flight' })).resolves.toMatchObject({
      route: { agent: 'travel' },
      embedding: [0.6, 0.8],
    });
    await expect(sut.route({ pinnedAgent: 'weather', userMessage: 'rain?' })).resolves.toEqual({
      route: { agent: 'weather', score: 1, classifier: 'pinned' },
    });
  });

  it('should rethrow the classifier error when the turn was aborted', async () => {
    const { sut } = build(new Error('aborted'));
    const controller = new AbortController();
    controller.abort();
    await expect(route(sut, { pinnedAgent: null, userMessage: 'x' }, controller.signal)).rejects.toThrow(
      'aborted',
    );
  });

  it('should use the fallback when no agent is routable', async () => {
    const { sut, calls } = build([], []);
    await expect(route(sut, { pinnedAgent: null, userMessage: 'hello' })).resolves.toMatchObject({
      agent: 'assistant',
      classifier: 'default',
      reason: 'no-routable-agent',
    });
    expect(calls).toHaveLength(0);
  });
});
