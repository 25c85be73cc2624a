import { END, type Runtime, START, StateGraph } from '@langchain/langgraph';
import { Injectable, type OnModuleInit } from '@nestjs/common';
import { RequestAborted } from '../inference/inference.errors';
import { NOOP_TURN_TRACE } from '../observability/turn-trace';
import { AgentRegistry } from './agent-registry.service';
import {
  agentNode,
  ANSWER_NODE,
  ROUTER_NODE,
  TurnContext,
  type TurnRuntime,
  TurnState,
  type TurnStateUpdate,
  type TurnStateValue,
} from './agent-graph.state';
import { AgentNotFound } from './agents.errors';
import type { AgentTurnSink, TurnInput, TurnOutput } from './agents.types';
import { AnswerService } from './answer.service';
import type { RegisteredAgent, RetrievedPassage } from './chat-agent';
import { AgentRouter } from './routing/agent-router.service';

type TurnNode = (state: TurnStateValue, runtime: Runtime<TurnRuntime>) => Promise<TurnStateUpdate>;

/**
 * One turn as a LangGraph StateGraph, compiled once at boot and invoked per turn:
 *
 * ```
 * START -> router --(route.agent)--> agent_<name> -> answer -> END
 * ```
 * `router` decides the agent (pinned, intent classifier, fallback), records a `route` span and emits
 * the `route` event; the conditional edge goes to that agent's node, which retrieves when the agent
 * does (emitting the `citations` event) and builds its PromptSpec;
 * `answer` runs the shared AnswerService (context window, response cache, engine), which emits the
 * `cache`, `token` and `usage` events. No checkpointer: the conversation tables are the store.
 */
@Injectable()
export class AgentGraph implements OnModuleInit {
  private compiled?: ReturnType<AgentGraph['compile']>;

  constructor(
    private readonly registry: AgentRegistry,
    private readonly router: AgentRouter,
    private readonly answers: AnswerService,
  ) {}

  /** Compiles the graph at boot, so a bad agent declaration fails the boot, not a turn. */
  onModuleInit(): void {
    this.graph();
  }

  /**
   * Runs one turn through the graph, sending its progress events to `sink`. `sink.signal` is the
   * turn's cancellation: each node checks it before it starts, and the engine and classifier calls
   * are aborted by it. It is not given to LangGraph's `invoke`, which would end the run with its own
   * abort error before ours.
   * @throws whatever a node throws (Engine* errors, ContextLengthExceeded, RequestAborted, ...), unchanged
   */
  async run(input: TurnInput, sink: AgentTurnSink): Promise<TurnOutput> {
    const final = await this.graph().invoke(
      {
        conversation: {
          tenantId: input.tenantId,
          conversationId: input.conversationId,
          pinnedAgent: input.pinnedAgent,
          knowledgeBaseIds: input.knowledgeBaseIds ?? [],
        },
        messages: input.history,
        userMessage: input.userMessage,
      },
      { context: { input, sink } },
    );
    if (!final.output) throw new Error('the agent graph ended without an answer');
    return final.output;
  }

  /** The graph as a Mermaid diagram (docs, debugging). */
  async mermaid(): Promise<string> {
    return (await this.graph().getGraphAsync()).drawMermaid();
  }

  private graph(): ReturnType<AgentGraph['compile']> {
    this.compiled ??= this.compile();
    return this.compiled;
  }

  private compile() {
    const agents = this.registry.list();
    const nodes: Record<string, TurnNode> = {
      [ROUTER_NODE]: (state, runtime) => this.routeNode(state, contextOf(runtime)),
      [ANSWER_NODE]: (state, runtime) => this.answerNode(state, contextOf(runtime)),
    };
    for (const agent of agents)
      nodes[agentNode(agent.name)] = (state, runtime) => this.agentNode(agent, state, contextOf(runtime));
    let graph = new StateGraph(TurnState, TurnContext)
      .addNode(nodes)
      .addEdge(START, ROUTER_NODE)
      .addConditionalEdges(
        ROUTER_NODE,
        (state) => this.nextAgentNode(state, agents),
        agents.map((a) => agentNode(a.name)),
      );
    for (const agent of agents) graph = graph.addEdge(agentNode(agent.name), ANSWER_NODE);
    return graph.addEdge(ANSWER_NODE, END).compile({ name: 'turn' });
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

/** The run's context; @throws RequestAborted when the turn was cancelled (checked as each node starts). */
function contextOf(runtime: Runtime<TurnRuntime>): TurnRuntime {
  if (!runtime.context) throw new Error('the agent graph was invoked without its runtime context');
  if (runtime.context.sink.signal.aborted) {
    throw new RequestAborted('The client disconnected; the turn was aborted.');
  }
  return runtime.context;
}
