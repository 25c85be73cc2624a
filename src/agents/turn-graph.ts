/**
 * The END node's name: LangGraph's `END` ('__end__', checked against it where AgentGraph compiles the
 * spec). Kept here so the direct runtime does not load LangGraph at all.
 */
export const GRAPH_END = '__end__';

/**
 * A graph that did not reach END within GRAPH_RECURSION_LIMIT nodes (the direct runtime's counterpart of
 * LangGraph's GraphRecursionError, with the same message).
 */
export class GraphRecursionLimit extends Error {
  override readonly name = 'GraphRecursionError';
}

/** One node: the state so far and the run's context in; the channels it writes out (the rest keep their value). */
export type GraphNode<S, C> = (state: S, context: C) => Promise<Partial<S>>;

/**
 * A graph declared once and run by either runtime (`AGENT_GRAPH_RUNTIME`): its nodes, the node START
 * leads to, its static edges and its conditional edges. AgentGraph compiles it into a LangGraph
 * StateGraph (Pregel's `invoke`, Mermaid drawing, LangGraph's own checks of the topology at compile);
 * `DirectGraphRunner` walks the same declaration node by node.
 */
export interface GraphSpec<S extends object, C> {
  nodes: Readonly<Record<string, GraphNode<S, C>>>;
  /** The node the `START -> entry` edge leads to. */
  entry: string;
  /** Static edges between nodes; `to` may be GRAPH_END (START's edge is `entry`). */
  edges: readonly { from: string; to: string }[];
  /** Conditional edges: `path` names the next node among `ends` (the drawing's dotted arrows). */
  branches: readonly { from: string; path: (state: S) => string; ends: readonly string[] }[];
}

/**
 * LangGraph's default `recursionLimit` (25 supersteps), kept by the direct runtime so that a graph that
 * loops fails the same way under both runtimes.
 */
export const GRAPH_RECURSION_LIMIT = 25;

/**
 * Runs a GraphSpec in-process, one node at a time, with LangGraph's semantics for what the turn's graph
 * uses: every channel keeps the last value written (a node's update overwrites the keys it returns,
 * `undefined` included, and keys that are not channels are dropped); after a node comes its one static
 * edge or its conditional edge; the run ends at END and returns the state. What it leaves out is Pregel's
 * per-step machinery, which the turn does not use (no checkpointer, no callbacks, no streaming of graph
 * steps): per-step checkpoints with a uuid each, config merging, an AbortSignal and a web stream per run.
 * It does not import LangGraph: a process on the direct runtime never loads it (~10 MB of heap).
 * A bare graph of the turn's shape costs ~2 ms of CPU per LangGraph `invoke` on the load benchmark's
 * machine (docs/scaling.md, "Sixth pass").
 *
 * Only graphs where every node has exactly one way out (one static edge or one conditional edge) can run
 * here; a fan-out (parallel nodes in one superstep) needs Pregel.
 * @throws Error at construction when the spec has a fan-out, a node without a way out, or an edge to an
 *   unknown node
 */
export class DirectGraphRunner<S extends object, C> {
  private readonly next = new Map<string, (state: S) => string>();
  /** The state's channel names (LangGraph drops update keys that are not channels). */
  private readonly channels: ReadonlySet<string>;

  constructor(
    private readonly spec: GraphSpec<S, C>,
    channels: readonly string[],
  ) {
    this.channels = new Set(channels);
    const known = (node: string): boolean => node === GRAPH_END || node in spec.nodes;
    if (!(spec.entry in spec.nodes)) throw new Error(`the graph's entry ${spec.entry} is not a node`);
    for (const { from, to } of spec.edges) {
      if (!known(from) || !known(to)) throw new Error(`the edge ${from} -> ${to} names an unknown node`);
      this.addWayOut(from, () => to);
    }
    for (const { from, path, ends } of spec.branches) {
      const unknown = [from, ...ends].filter((n) => !known(n));
      if (unknown.length)
        throw new Error(`the conditional edge from ${from} names unknown nodes: ${unknown.join(', ')}`);
      this.addWayOut(from, path);
    }
    const deadEnds = Object.keys(spec.nodes).filter((n) => !this.next.has(n));
    if (deadEnds.length) throw new Error(`nodes without an edge out: ${deadEnds.join(', ')}`);
  }

  /**
   * Runs the graph from its entry with `input` as the initial state.
   * @returns the state at END
   * @throws whatever a node or a conditional edge throws, unchanged
   * @throws GraphRecursionLimit after GRAPH_RECURSION_LIMIT nodes without reaching GRAPH_END
   */
  async run(input: S, context: C): Promise<S> {
    let state = input;
    let node = this.spec.entry;
    for (let steps = 0; node !== GRAPH_END; steps++) {
      if (steps === GRAPH_RECURSION_LIMIT) {
        throw new GraphRecursionLimit(
          `Recursion limit of ${GRAPH_RECURSION_LIMIT} reached without hitting a stop condition.`,
        );
      }
      const update = await this.spec.nodes[node](state, context);
      state = this.apply(state, update);
      node = this.next.get(node)!(state);
    }
    return state;
  }

  private apply(state: S, update: Partial<S>): S {
    const next = { ...state };
    for (const key of Object.keys(update)) {
      if (this.channels.has(key))
        (next as Record<string, unknown>)[key] = (update as Record<string, unknown>)[key];
    }
    return next;
  }

  private addWayOut(from: string, next: (state: S) => string): void {
    if (this.next.has(from))
      throw new Error(`node ${from} has more than one way out (a fan-out needs Pregel)`);
    this.next.set(from, next);
  }
}
