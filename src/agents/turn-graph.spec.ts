import { Annotation, END, GraphRecursionError, START, StateGraph } from '@langchain/langgraph';
import {
  DirectGraphRunner,
  GRAPH_END,
  GRAPH_RECURSION_LIMIT,
  GraphRecursionLimit,
  type GraphSpec,
} from './turn-graph';

const State = Annotation.Root({
  question: Annotation<string>(),
  route: Annotation<string | undefined>(),
  hops: Annotation<number>(),
  draft: Annotation<string | undefined>(),
  answer: Annotation<string | undefined>(),
});
type S = typeof State.State;
type C = { calls: string[]; tag: string };
const channels = Object.keys(State.spec);

/** The same spec as a LangGraph StateGraph (what AgentGraph compiles), to compare the two runtimes. */
function pregel(spec: GraphSpec<S, C>) {
  let graph = new StateGraph(
    State,
    Annotation.Root({ calls: Annotation<string[]>(), tag: Annotation<string>() }),
  );
  for (const [name, node] of Object.entries(spec.nodes))
    graph = graph.addNode(name, (state: S, runtime: { context?: C }) =>
      node(state, runtime.context!),
    ) as typeof graph;
  graph = graph.addEdge(START, spec.entry as never);
  for (const b of spec.branches)
    graph = graph.addConditionalEdges(b.from as never, b.path, [...b.ends] as never[]);
  for (const e of spec.edges) graph = graph.addEdge(e.from as never, e.to as never);
  const compiled = graph.compile();
  return (input: S, context: C) => compiled.invoke(input, { context });
}

/** router -> (math | chat) -> reply -> END, where math loops on itself until hops reaches 3. */
function spec(): GraphSpec<S, C> {
  return {
    entry: 'router',
    nodes: {
      router: (s, c) => {
        c.calls.push('router');
        return Promise.resolve({ route: s.question.includes('+') ? 'math' : 'chat', hops: 0 });
      },
      math: (s, c) => {
        c.calls.push('math');
        return Promise.resolve({ hops: s.hops + 1, draft: `sum after ${s.hops + 1}` });
      },
      chat: (s, c) => {
        c.calls.push('chat');
        // an explicit undefined overwrites; a key that is not a channel is dropped
        return Promise.resolve({ draft: undefined, route: `${s.route}!`, bogus: 1 } as Partial<S>);
      },
      reply: (s, c) => {
        c.calls.push('reply');
        return Promise.resolve({ answer: `${c.tag}:${s.draft ?? 'none'}` });
      },
    },
    edges: [
      { from: 'chat', to: 'reply' },
      { from: 'reply', to: END },
    ],
    branches: [
      { from: 'router', path: (s) => s.route!, ends: ['math', 'chat'] },
      { from: 'math', path: (s) => (s.hops < 3 ? 'math' : 'reply'), ends: ['math', 'reply'] },
    ],
  };
}

describe('DirectGraphRunner', () => {
  const input = (question: string): S => ({ question, draft: 'stale' }) as S;

  it.each(['1 + 2', 'hello'])(
    'should end in the same state with the same node order as Pregel (%s)',
    async (q) => {
      const direct = { calls: [] as string[], tag: 't' };
      const viaPregel = { calls: [] as string[], tag: 't' };

      const mine = await new DirectGraphRunner(spec(), channels).run(input(q), direct);
      const theirs = await pregel(spec())(input(q), viaPregel);

      expect(mine).toEqual(theirs);
      expect(direct.calls).toEqual(viaPregel.calls);
    },
  );

  it('should follow conditional edges, loops included, and keep the last value of each channel', async () => {
    const context = { calls: [] as string[], tag: 'x' };

    const final = await new DirectGraphRunner(spec(), channels).run(input('1 + 2'), context);

    expect(context.calls).toEqual(['router', 'math', 'math', 'math', 'reply']);
    expect(final).toMatchObject({ hops: 3, draft: 'sum after 3', answer: 'x:sum after 3', route: 'math' });
  });

  it('should overwrite a channel with an explicit undefined and drop keys that are not channels', async () => {
    const final = await new DirectGraphRunner(spec(), channels).run(input('hello'), { calls: [], tag: 'x' });

    expect(final.draft).toBeUndefined();
    expect(final.answer).toBe('x:none');
    expect(final).not.toHaveProperty('bogus');
  });

  it('should rethrow a node error unchanged and run nothing after it', async () => {
    const boom = new RangeError('node failed');
    const failing = spec();
    const calls: string[] = [];
    const nodes = { ...failing.nodes, chat: () => Promise.reject(boom) };

    await expect(
      new DirectGraphRunner({ ...failing, nodes }, channels).run(input('hi'), { calls, tag: 'x' }),
    ).rejects.toBe(boom);
    expect(calls).toEqual(['router']);
  });

  it('should name END as LangGraph does', () => {
    expect(GRAPH_END).toBe(END);
  });

  it('should stop a graph that never reaches END after the same number of steps as Pregel', async () => {
    const looping: GraphSpec<S, C> = {
      ...spec(),
      branches: [
        { from: 'router', path: () => 'math', ends: ['math', 'chat'] },
        { from: 'math', path: () => 'math', ends: ['math'] },
      ],
    };
    const context = { calls: [] as string[], tag: 'x' };

    const direct = new DirectGraphRunner(looping, channels).run(input('1+1'), context);
    await expect(direct).rejects.toBeInstanceOf(GraphRecursionLimit);
    await expect(direct).rejects.toMatchObject({ name: 'GraphRecursionError' });
    expect(context.calls).toHaveLength(GRAPH_RECURSION_LIMIT);
    await expect(pregel(looping)(input('1+1'), { calls: [], tag: 'x' })).rejects.toBeInstanceOf(
      GraphRecursionError,
    );
  });

  it('should refuse a fan-out, a node without a way out and an edge to an unknown node', () => {
    const base = spec();
    expect(
      () =>
        new DirectGraphRunner({ ...base, edges: [...base.edges, { from: 'chat', to: 'math' }] }, channels),
    ).toThrow(/chat has more than one way out/);
    expect(() => new DirectGraphRunner({ ...base, edges: [{ from: 'reply', to: END }] }, channels)).toThrow(
      /without an edge out: chat/,
    );
    expect(
      () => new DirectGraphRunner({ ...base, edges: [...base.edges, { from: 'ghost', to: END }] }, channels),
    ).toThrow(/ghost -> __end__ names an unknown node/);
  });
});
