import { AgentsConfig } from '../config/agents.config';
import { EngineUnavailable, RequestAborted } from '../inference/inference.errors';
import type { TurnTrace } from '../observability/turn-trace';
import { AgentGraph } from './agent-graph.service';
import type { AgentRegistry } from './agent-registry.service';
import { AgentNotFound } from './agents.errors';
import type { TurnProgressEvent } from '../common/turn-events';
import type { AgentTurnPayloads, AgentTurnSink, RouteDecision, TurnInput, TurnOutput } from './agents.types';
import type { AnswerRequest, AnswerService } from './answer.service';
import { defaultAgentPrompt, type RegisteredAgent } from './chat-agent';
import type { AgentRouter, RouteRequest } from './routing/agent-router.service';

function agent(name: string): RegisteredAgent {
  const prefix = { text: `GLOBAL\n\nRole: ${name}.`, templateVersion: `global@1+${name}@1` };
  return {
    name,
    description: name,
    examples: [],
    prefix,
    instance: {},
    buildPrompt: (turn) => Promise.resolve(defaultAgentPrompt(turn, prefix)),
  };
}

/** A sink that records the turn's events. */
function recordingSink(signal: AbortSignal = new AbortController().signal) {
  const events: TurnProgressEvent<AgentTurnPayloads>[] = [];
  const sink: AgentTurnSink = { signal, emit: (event) => void events.push(event) };
  return { sink, events };
}

const input = (overrides: Partial<TurnInput> = {}): TurnInput => ({
  tenantId: 'tenant-1',
  conversationId: 'conv-1',
  pinnedAgent: null,
  history: [{ role: 'user', content: 'earlier', sequence: 1 }],
  userMessage: 'hello',
  cacheSalt: 'salt',
  ...overrides,
});

/** Records spans; the graph must record one `route` span per turn. */
function recordingTrace() {
  const spans: { name: string; input: unknown; output?: unknown }[] = [];
  const trace: TurnTrace = {
    id: 'trace-1',
    span: (name, spanInput) => {
      const span: (typeof spans)[number] = { name, input: spanInput };
      spans.push(span);
      return { end: (output) => void (span.output = output) };
    },
    generation: () => ({ firstToken: () => undefined, end: () => undefined }),
    end: () => undefined,
  };
  return { trace, spans };
}

describe.each(['direct', 'langgraph'] as const)('AgentGraph (AGENT_GRAPH_RUNTIME=%s)', (runtime) => {
  const build = (
    decide: (r: RouteRequest) => RouteDecision,
    answer?: (r: AnswerRequest) => Promise<TurnOutput>,
    embedding?: number[],
  ) => {
    const agents = [agent('assistant'), agent('summarizer'), agent('weather')];
    const answered: AnswerRequest[] = [];
    const registry = { list: () => agents } as unknown as AgentRegistry;
    const router = {
      route: (r: RouteRequest) => Promise.resolve({ route: decide(r), embedding }),
    } as unknown as AgentRouter;
    const answers = {
      answer: (request: AnswerRequest, sink: AgentTurnSink) => {
        answered.push(request);
        if (answer) return answer(request);
        sink.emit({ type: 'token', delta: 'Hel' });
        sink.emit({ type: 'token', delta: 'lo' });
        return Promise.resolve({
          content: 'Hello',
          finishReason: 'stop',
          model: 'm',
          replica: 'r',
          usage: { promptTokens: 40, completionTokens: 2, cachedTokens: 32 },
          timings: { ttftMs: 1, totalMs: 2, itlMs: 1 },
          route: request.route,
          templateVersion: request.prompt.templateVersion,
          cache: { cachedTokens: 32, prefixReuse: 0.8 },
        } satisfies TurnOutput);
      },
    } as unknown as AnswerService;
    const sut = new AgentGraph(
      registry,
      router,
      answers,
      Object.assign(new AgentsConfig(), { AGENT_GRAPH_RUNTIME: runtime }),
    );
    // Not awaited: build() stays synchronous; a turn waits for the same compilation when it needs it.
    const booted = sut.onModuleInit();
    return { sut, answered, booted };
  };

  it('should go router -> the chosen agent -> answer, and return the answer', async () => {
    const route: RouteDecision = { agent: 'summarizer', score: 0.8, classifier: 'embedding', floor: 0.4 };
    const { sut, answered } = build(() => route);
    const output = await sut.run(input(), recordingSink().sink);
    expect(output).toMatchObject({ content: 'Hello', route, templateVersion: 'global@1+summarizer@1' });
    expect(answered).toHaveLength(1);
    expect(answered[0].route).toEqual(route);
    expect(answered[0].prompt).toEqual({
      stablePrefix: 'GLOBAL\n\nRole: summarizer.',
      templateVersion: 'global@1+summarizer@1',
      history: [{ role: 'user', content: 'earlier', sequence: 1 }],
      userMessage: 'hello',
    });
  });

  it('should give the router the pinned agent, the message and the turn salt and conversation', async () => {
    const requests: RouteRequest[] = [];
    const { sut } = build((r) => {
      requests.push(r);
      return { agent: 'weather', score: 1, classifier: 'pinned' };
    });
    await sut.run(input({ pinnedAgent: 'weather', userMessage: 'rain?' }), recordingSink().sink);
    expect(requests).toEqual([
      expect.objectContaining({
        pinnedAgent: 'weather',
        userMessage: 'rain?',
        cacheSalt: 'salt',
        routingKey: 'conv-1',
      }),
    ]);
  });

  it('should emit the route, then the answer step events, in one stream', async () => {
    const route: RouteDecision = { agent: 'assistant', score: 0, classifier: 'embedding', fallback: true };
    const { sut } = build(() => route);
    const { sink, events } = recordingSink();
    await sut.run(input(), sink);
    expect(events).toEqual([
      { type: 'route', route },
      { type: 'token', delta: 'Hel' },
      { type: 'token', delta: 'lo' },
    ]);
  });

  it('should hand the message embedding the router computed to the answer step', async () => {
    const { sut, answered } = build(
      () => ({ agent: 'weather', score: 0.9, classifier: 'embedding' }),
      undefined,
      [0.6, 0.8],
    );
    await sut.run(input(), recordingSink().sink);
    expect(answered[0].messageEmbedding).toEqual([0.6, 0.8]);
  });

  it('should hand the original input to the answer step, not a copy', async () => {
    const { sut, answered } = build(() => ({ agent: 'assistant', score: 1, classifier: 'pinned' }));
    const turnInput = input();
    await sut.run(turnInput, recordingSink().sink);
    expect(answered[0].input).toBe(turnInput);
  });

  it('should end an aborted turn with RequestAborted and not answer it', async () => {
    const controller = new AbortController();
    controller.abort();
    const { sut, answered } = build(() => ({ agent: 'assistant', score: 1, classifier: 'pinned' }));
    await expect(sut.run(input(), recordingSink(controller.signal).sink)).rejects.toBeInstanceOf(
      RequestAborted,
    );
    expect(answered).toHaveLength(0);
  });

  it('should record the routing decision as a route span', async () => {
    const route: RouteDecision = { agent: 'weather', score: 0.7, classifier: 'embedding' };
    const { sut } = build(() => route);
    const { trace, spans } = recordingTrace();
    await sut.run(input({ trace }), recordingSink().sink);
    expect(spans).toEqual([{ name: 'route', input: { pinnedAgent: null }, output: route }]);
  });

  it('should rethrow the answer step error unchanged', async () => {
    const error = new EngineUnavailable('no replica');
    const { sut } = build(
      () => ({ agent: 'assistant', score: 1, classifier: 'pinned' }),
      () => Promise.reject(error),
    );
    await expect(sut.run(input(), recordingSink().sink)).rejects.toBe(error);
  });

  it('should fail with AgentNotFound when the router names an agent the graph has no node for', async () => {
    const { sut, answered } = build(() => ({ agent: 'ghost', score: 1, classifier: 'pinned' }));
    await expect(sut.run(input(), recordingSink().sink)).rejects.toBeInstanceOf(AgentNotFound);
    expect(answered).toHaveLength(0);
  });

  it('should draw one conditional edge per agent and join them at the answer node', async () => {
    const { sut } = build(() => ({ agent: 'assistant', score: 1, classifier: 'pinned' }));
    const mermaid = await sut.mermaid();
    for (const name of ['assistant', 'summarizer', 'weather']) {
      expect(mermaid).toMatch(new RegExp(`router -\\.-> agent_${name};`));
      expect(mermaid).toMatch(new RegExp(`agent_${name} --> answer;`));
    }
    expect(mermaid).toMatch(/__start__ --> router;/);
    expect(mermaid).toMatch(/answer --> __end__;/);
  });
});
