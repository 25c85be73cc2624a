import type * as LangGraph from '@langchain/langgraph';
import type { CompiledStateGraph, Runtime } from '@langchain/langgraph';
import { Injectable, type OnModuleInit } from '@nestjs/common';
import { AgentsConfig } from '../config/agents.config';
import { RequestAborted } from '../inference/inference.errors';
import { NOOP_TURN_TRACE } from '../observability/turn-trace';
import { AgentRegistry } from './agent-registry.service';
import {
  agentNode,
  ANSWER_NODE,
  ROUTER_NODE,
  TURN_STATE_CHANNELS,
  turnAnnotations,
  type TurnRuntime,
  type TurnStateUpdate,
  type TurnStateValue,
} from './agent-graph.state';
import { AgentNotFound } from './agents.errors';
import type { AgentTurnSink, TurnInput, TurnOutput } from './agents.types';
import { AnswerService } from './answer.service';
import type { RegisteredAgent, RetrievedPassage } from './chat-agent';
import { AgentRouter } from './routing/agent-router.service';
import { DirectGraphRunner, GRAPH_END, type GraphSpec } from './turn-graph';

type TurnGraphSpec = GraphSpec<TurnStateValue, TurnRuntime>;
type TurnNode = (state: TurnStateValue, runtime: Runtime<TurnRuntime>) => Promise<TurnStateUpdate>;
/** The compiled graph, as far as AgentGraph uses it. */
interface TurnPregel {
  invoke(state: TurnStateValue, options: { context: TurnRuntime }): Promise<TurnStateValue>;
  getGraphAsync(): ReturnType<CompiledStateGraph<TurnStateValue, TurnStateUpdate>['getGraphAsync']>;
}

/**
 * One turn as a graph, declared once and run per turn:
 *
 * ```
 * START -> router --(route.agent)--> agent_<name> -> answer -> END
 * ```
 * `router` decides the agent (pinned, intent classifier, fallback), records a `route` span and emits
 * the `route` event; the conditional edge goes to that agent's node, which retrieves when the agent
 * does (emitting the `citations` event) and builds its PromptSpec;
 * `answer` runs the shared AnswerService (context window, response cache, engine), which emits the
 * `cache`, `token` and `usage` events. No checkpointer: the conversation tables are the store.
 *
 * The graph is declared once (`spec`). `AGENT_GRAPH_RUNTIME` says what runs a turn: `direct` (default) walks
 * the declaration node by node (DirectGraphRunner, no per-step checkpoints or config merging) and never
 * loads LangGraph (~10 MB of heap an api process does not carry); `langgraph` compiles it into a LangGraph
 * StateGraph at boot (LangGraph checks its topology then) and runs it with Pregel's `invoke`. The Mermaid
 * drawing compiles it on first use under either runtime.
 */
@Injectable()
export class AgentGraph implements OnModuleInit {
  private declared?: TurnGraphSpec;
  private direct?: DirectGraphRunner<TurnStateValue, TurnRuntime>;
  private pregel?: Promise<TurnPregel>;

  constructor(
    private readonly registry: AgentRegistry,
    private readonly router: AgentRouter,
    private readonly answers: AnswerService,
    private readonly config: AgentsConfig,
  ) {}

  /**
   * Builds the graph at boot, so a bad agent declaration fails the boot, not a turn (and compiles it for
   * LangGraph when that runtime runs the turns).
   */
  async onModuleInit(): Promise<void> {
    this.directRunner();
    if (this.config.AGENT_GRAPH_RUNTIME === 'langgraph') await this.compiled();
  }

  /**
   * Runs one turn through the graph (with the runtime AGENT_GRAPH_RUNTIME names), sending its progress
   * events to `sink`. `sink.signal` is the turn's cancellation: each node checks it before it starts, and
   * the engine and classifier calls are aborted by it. It is not given to LangGraph's `invoke`, which
   * would end the run with its own abort error before ours.
   * @throws whatever a node throws (Engine* errors, ContextLengthExceeded, RequestAborted, ...), unchanged
   */
  async run(input: TurnInput, sink: AgentTurnSink): Promise<TurnOutput> {
    const state: TurnStateValue = {
      conversation: {
        tenantId: input.tenantId,
        conversationId: input.conversationId,
        pinnedAgent: input.pinnedAgent,
        knowledgeBaseIds: input.knowledgeBaseIds ?? [],
      },
      messages: input.history,
      userMessage: input.userMessage,
    } as TurnStateValue;
    const context: TurnRuntime = { input, sink };
    const final =
      this.config.AGENT_GRAPH_RUNTIME === 'langgraph'
        ? await (await this.compiled()).invoke(state, { context })
        : await this.directRunner().run(state, context);
    if (!final.output) throw new Error('the agent graph ended without an answer');
    return final.output;
  }

  /** The graph as a Mermaid diagram (docs, debugging); loads and compiles LangGraph on first use. */
  async mermaid(): Promise<string> {
    return (await (await this.compiled()).getGraphAsync()).drawMermaid();
  }

  private directRunner(): DirectGraphRunner<TurnStateValue, TurnRuntime> {
    this.direct ??= new DirectGraphRunner(this.spec(), TURN_STATE_CHANNELS);
    return this.direct;
  }

  /** The graph compiled by LangGraph, which is loaded here, once. */
  private compiled(): Promise<TurnPregel> {
    this.pregel ??= import('@langchain/langgraph').then((lg) => this.compile(lg, this.spec()));
    return this.pregel;
  }

  /** The turn's graph, declared once for both runtimes (memoized: the registry is fixed after boot). */
  private spec(): TurnGraphSpec {
    this.declared ??= this.declare();
    return this.declared;
  }

  private declare(): TurnGraphSpec {
    const agents = this.registry.list();
    const nodes: Record<string, TurnGraphSpec['nodes'][string]> = {
      [ROUTER_NODE]: (state, context) => this.routeNode(state, checked(context)),
      [ANSWER_NODE]: (state, context) => this.answerNode(state, checked(context)),
    };
    for (const agent of agents)
      nodes[agentNode(agent.name)] = (state, context) => this.agentNode(agent, state, checked(context));
    return {
      nodes,
      entry: ROUTER_NODE,
      edges: [
        ...agents.map((a) => ({ from: agentNode(a.name), to: ANSWER_NODE })),
        { from: ANSWER_NODE, to: GRAPH_END },
      ],
      branches: [
        {
          from: ROUTER_NODE,
          path: (state) => this.nextAgentNode(state, agents),
          ends: agents.map((a) => agentNode(a.name)),
        },
      ],
    };
  }

  /** The spec as a LangGraph StateGraph, compiled (LangGraph checks the topology here). */
  private compile(lg: typeof LangGraph, spec: TurnGraphSpec): TurnPregel {
    // GRAPH_END is LangGraph's END (turn-graph.spec.ts checks it): the spec's edges to it are LangGraph's.
    const { TurnState, TurnContext } = turnAnnotations(lg);
    const nodes: Record<string, TurnNode> = {};
    for (const [name, node] of Object.entries(spec.nodes))
      nodes[name] = (state, runtime) => node(state, contextOf(runtime));
    let graph = new lg.StateGraph(TurnState, TurnContext).addNode(nodes).addEdge(lg.START, spec.entry);
    for (const { from, path, ends } of spec.branches)
      graph = graph.addConditionalEdges(from, path, [...ends]);
    for (const { from, to } of spec.edges) graph = graph.addEdge(from, to);
    return graph.compile({ name: 'turn' }) as unknown as TurnPregel;
  }

  /** The conditional edge after `router`: the node of the agent it picked. */
  private nextAgentNode(state: TurnStateValue, agents: readonly RegisteredAgent[]): string {
    const name = state.route?.agent ?? '';
    if (!agents.some((a) => a.name === name))
      throw new AgentNotFound(
        name,
        agents.map((a) => a.name),
      );
    return agentNode(name);
  }

  private async routeNode(state: TurnStateValue, { input, sink }: TurnRuntime): Promise<TurnStateUpdate> {
    const span = (input.trace ?? NOOP_TURN_TRACE).span('route', {
      pinnedAgent: state.conversation.pinnedAgent,
    });
    try {
      const { route, embedding } = await this.router.route(
        {
          pinnedAgent: state.conversation.pinnedAgent,
          userMessage: state.userMessage,
          ineligible: this.registry
            .list()
            .filter((a) => a.instance.routableFor?.(state.conversation) === false)
            .map((a) => a.name),
          cacheSalt: input.cacheSalt,
          routingKey: input.conversationId,
        },
        sink.signal,
      );
      span.end(route);
      sink.emit({ type: 'route', route });
      return { route, embedding };
    } catch (e) {
      span.end({ error: e instanceof Error ? e.message : String(e) });
      throw e;
    }
  }

  /**
   * The agent's node: its retrieval when it has one (spanned as `retrieve`; the `citations` event goes
   * out here, before the answer node streams any token), then its prompt.
   */
  private async agentNode(
    agent: RegisteredAgent,
    state: TurnStateValue,
    { input, sink }: TurnRuntime,
  ): Promise<TurnStateUpdate> {
    if (!state.route) throw new Error(`node ${agentNode(agent.name)} reached without a route`);
    let retrieved: RetrievedPassage[] | undefined;
    let embedding = state.embedding;
    if (agent.instance.retrieve) {
      const span = (input.trace ?? NOOP_TURN_TRACE).span('retrieve', {
        agent: agent.name,
        knowledgeBaseIds: state.conversation.knowledgeBaseIds,
      });
      try {
        const outcome = await agent.instance.retrieve({
          conversation: state.conversation,
          userMessage: state.userMessage,
          route: state.route,
          embedding: state.embedding,
          signal: sink.signal,
        });
        retrieved = outcome.passages;
        embedding ??= outcome.embedding ? [...outcome.embedding] : undefined;
        const citations = retrieved.flatMap((p) => (p.citation ? [p.citation] : []));
        span.end({ passages: retrieved.length, citations });
        sink.emit({ type: 'citations', citations });
      } catch (e) {
        span.end({ error: e instanceof Error ? e.message : String(e) });
        throw e;
      }
    }
    const prompt = await agent.buildPrompt({
      conversation: state.conversation,
      messages: state.messages,
      userMessage: state.userMessage,
      route: state.route,
      ...(retrieved ? { retrieved } : {}),
    });
    return { prompt, retrieved, embedding };
  }

  private async answerNode(state: TurnStateValue, { input, sink }: TurnRuntime): Promise<TurnStateUpdate> {
    if (!state.route || !state.prompt) throw new Error('node answer reached without a route and a prompt');
    const output = await this.answers.answer(
      {
        input,
        route: state.route,
        prompt: state.prompt,
        messageEmbedding: state.embedding,
        retrieved: state.retrieved,
      },
      sink,
    );
    return { output };
  }
}

/** LangGraph's runtime context of the run (the `langgraph` runtime). */
function contextOf(runtime: Runtime<TurnRuntime>): TurnRuntime {
  if (!runtime.context) throw new Error('the agent graph was invoked without its runtime context');
  return runtime.context;
}

/** The run's context; @throws RequestAborted when the turn was cancelled (checked as each node starts). */
function checked(context: TurnRuntime): TurnRuntime {
  if (context.sink.signal.aborted) throw new RequestAborted('The client disconnected; the turn was aborted.');
  return context;
}
