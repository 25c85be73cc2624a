import { Annotation } from '@langchain/langgraph';
import type { PromptSpec } from '../context/prompt.types';
import type { HistoryMessage } from '../context/prompt.types';
import type { ChatUsage } from '../inference/inference.types';
import type { RouteDecision, TurnInput, TurnOutput } from './agents.types';
import type { RetrievedPassage, TurnConversation } from './chat-agent';

/**
 * The graph's state for one turn. Plain data only: it is built from TurnInput at the start of a
 * run and dropped at the end (the conversation tables are the store; there is no checkpointer).
 * Channels without a reducer keep the last value written.
 */
export const TurnState = Annotation.Root({
  conversation: Annotation<TurnConversation>(),
  /** Complete earlier messages, oldest first. */
  messages: Annotation<HistoryMessage[]>(),
  userMessage: Annotation<string>(),
  /** Set by the router node. */
  route: Annotation<RouteDecision | undefined>(),
  /** Passages retrieved for this turn; nodes append (none retrieves yet: the knowledge module does not exist). */
  retrieved: Annotation<RetrievedPassage[]>({
    reducer: (current, update) => current.concat(update),
    default: () => [],
  }),
  /** Set by the agent node: the prompt the answer node sends. */
  prompt: Annotation<PromptSpec | undefined>(),
  /** Set by the answer node. */
  output: Annotation<TurnOutput | undefined>(),
  /** Engine usage of the answer, tokens (cached tokens included). */
  usage: Annotation<ChatUsage | undefined>(),
});

export type TurnStateValue = typeof TurnState.State;
export type TurnStateUpdate = typeof TurnState.Update;

/**
 * Per-run context that is not state: the request with its callbacks (token deltas for SSE, abort
 * signal, trace). Passed as LangGraph's runtime `context`, never copied into state.
 */
export const TurnContext = Annotation.Root({
  input: Annotation<TurnInput>(),
});

export type TurnRuntime = typeof TurnContext.State;

/** Node names: one node per agent, `agent_<name>` (agent names cannot clash with the fixed nodes). */
export const ROUTER_NODE = 'router';
export const ANSWER_NODE = 'answer';
export const agentNode = (agent: string): string => `agent_${agent}`;
