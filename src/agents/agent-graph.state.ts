import type * as LangGraph from '@langchain/langgraph';
import type { HistoryMessage, PromptSpec } from '../context/prompt.types';
import type { AgentTurnSink, RouteDecision, TurnInput, TurnOutput } from './agents.types';
import type { RetrievedPassage, TurnConversation } from './chat-agent';

/**
 * The state's and the run context's LangGraph annotations, made from the LangGraph module when the graph is
 * compiled for LangGraph (AgentGraph loads it then): the direct runtime never loads LangGraph.
 */
export function turnAnnotations({ Annotation }: typeof LangGraph) {
  /**
   * The graph's state for one turn. Plain data only: it is built from TurnInput at the start of a
   * run and dropped at the end (the conversation tables are the store; there is no checkpointer).
   * Channels without a reducer keep the last value written. Every channel is written by one node and read
   * by another (or by `AgentGraph.run`).
   */
  const TurnState = Annotation.Root({
    conversation: Annotation<TurnConversation>(),
    /** Complete earlier messages after the last compaction point, oldest first (read by the agent node). */
    messages: Annotation<HistoryMessage[]>(),
    userMessage: Annotation<string>(),
    /** Set by the router node; read by the conditional edge, the agent node and the answer node. */
    route: Annotation<RouteDecision | undefined>(),
    /**
     * Set by the router node when its classifier embedded the user message (or by an agent node whose
     * retrieval embedded it); read by the agent's retrieval and by the answer node, which hands it to the
     * response cache's semantic lookup (one embedding per turn).
     */
    embedding: Annotation<number[] | undefined>(),
    /**
     * Set by the agent node when its agent retrieves (`ChatAgent.retrieve`); read by the agent's prompt
     * (volatile tail) and by the answer node (the citations to store, the documents to file a cached answer under).
     */
    retrieved: Annotation<RetrievedPassage[] | undefined>(),
    /** Set by the agent node: the prompt the answer node sends. */
    prompt: Annotation<PromptSpec | undefined>(),
    /** Set by the answer node; read by `AgentGraph.run`. */
    output: Annotation<TurnOutput | undefined>(),
  });
  /**
   * Per-run context that is not state: the request, and the sink of the turn's events (with its abort
   * signal). Passed as LangGraph's runtime `context`, never copied into state.
   */
  const TurnContext = Annotation.Root({
    input: Annotation<TurnInput>(),
    sink: Annotation<AgentTurnSink>(),
  });
  return { TurnState, TurnContext };
}

type TurnAnnotations = ReturnType<typeof turnAnnotations>;

/** The turn state's channels, in order (what the direct runtime keeps; `turnAnnotations` declares the same). */
export const TURN_STATE_CHANNELS = [
  'conversation',
  'messages',
  'userMessage',
  'route',
  'embedding',
  'retrieved',
  'prompt',
  'output',
] as const;

export type TurnStateValue = TurnAnnotations['TurnState']['State'];
export type TurnStateUpdate = TurnAnnotations['TurnState']['Update'];
/**
 * Per-run context that is not state: the request, and the sink of the turn's events (with its abort
 * signal). Passed as LangGraph's runtime `context`, never copied into state.
 */
export type TurnRuntime = TurnAnnotations['TurnContext']['State'];

/** Node names: one node per agent, `agent_<name>` (agent names cannot clash with the fixed nodes). */
export const ROUTER_NODE = 'router';
export const ANSWER_NODE = 'answer';
export const agentNode = (agent: string): string => `agent_${agent}`;
