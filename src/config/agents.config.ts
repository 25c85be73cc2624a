import { IsIn, IsInt, IsNumber, IsString, Matches, Max, Min } from 'class-validator';

/** The agent router (src/agents): how a turn without a pinned agent picks its agent. */
export class AgentsConfig {
  /**
   * Intent classifier. `embedding` (default): similarity of the user message to each agent's
   * examples over `/v1/embeddings`. `llm`: asks the chat engine to name the agent (one short
   * completion per turn, before the answer).
   */
  @IsIn(['embedding', 'llm']) AGENT_CLASSIFIER: 'embedding' | 'llm' = 'embedding';
  /**
   * Confidence floor (0..1): a best score below it routes the turn to AGENT_FALLBACK. The embedding
   * score is a cosine-scale similarity. 0.5 with the default local embedder keeps 99.4% of in-domain
   * questions routed while sending 97% of off-topic chat to the fallback (calibration on a banking77
   * split in docs/agents.md); lower it to favour recall.
   */
  @IsNumber() @Min(0) @Max(1) AGENT_ROUTING_FLOOR: number = 0.5;
  /** Agent that answers when no agent clears the floor, or the classifier is unavailable. */
  @IsString()
  @Matches(/^[a-z][a-z0-9_-]{0,99}$/, {
    message: 'must be an agent name (lowercase letters, digits, - and _)',
  })
  AGENT_FALLBACK: string = 'assistant';
  /**
   * Examples per agent kept by the embedding classifier; an agent that declares more keeps this
   * many representative ones (greedy facility location), which bounds the cost of a routing decision.
   */
  @IsInt() @Min(1) AGENT_ROUTING_MAX_EXAMPLES: number = 64;
  /**
   * How the embedding classifier ranks agents. `softmax` (default): a softmax regression trained on the
   * agents' example vectors (on a worker thread when the index is built, about 1 s per 800 examples), with the
   * nearest-neighbour index; `nearest`: the index alone. The floor compares the index's similarity either
   * way. On a held-out banking77 split `softmax` routes 1-2 points more questions right (docs/agents.md).
   */
  @IsIn(['softmax', 'nearest']) AGENT_ROUTING_MODEL: 'softmax' | 'nearest' = 'softmax';
  /**
   * What runs a turn's agent graph (router -> agent -> answer). `direct` (default): the graph's own
   * declaration walked node by node in-process, with LangGraph's last-value channel semantics and without
   * Pregel's per-step checkpoints, uuids, config merging and streams (~2 ms of CPU per turn less on the load
   * benchmark, docs/scaling.md). `langgraph`: LangGraph's Pregel `invoke`, for LangChain callbacks or
   * LangSmith tracing of the graph's steps. Both run the same nodes and edges, and the graph is compiled by
   * LangGraph at boot either way.
   */
  @IsIn(['direct', 'langgraph']) AGENT_GRAPH_RUNTIME: 'direct' | 'langgraph' = 'direct';
}
