import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class RouteCandidateDto {
  @ApiProperty({ example: 'summarizer' }) agent!: string;
  @ApiProperty({ example: 0.73, description: "The classifier's score (0..1)." }) score!: number;
}

/** How a turn was routed (`route` on the assistant message and in the turn response). */
export class RouteDecisionDto {
  @ApiProperty({ example: 'summarizer', description: 'The agent that answered.' })
  agent!: string;

  @ApiProperty({
    example: 0.73,
    description:
      'Confidence (0..1): 1 when pinned; for `embedding` the blended cosine similarity of the message to the ' +
      "agent's examples; for `llm` 1 when the engine named a known agent, else 0.",
  })
  score!: number;

  @ApiProperty({
    enum: ['pinned', 'default', 'embedding', 'llm'],
    description:
      "`pinned`: the conversation's agent; `default`: no classifier ran (none routable, or it failed).",
  })
  classifier!: string;

  @ApiPropertyOptional({
    description: 'True when the fallback agent answered (best score below the floor, or no classifier).',
  })
  fallback?: boolean;

  @ApiPropertyOptional({
    example: 0.4,
    description: 'The confidence floor the score was compared with (AGENT_ROUTING_FLOOR).',
  })
  floor?: number;

  @ApiPropertyOptional({
    type: [RouteCandidateDto],
    description: "The classifier's best agents, best first (at most 3).",
  })
  candidates?: RouteCandidateDto[];

  @ApiPropertyOptional({
    enum: ['below-floor', 'no-routable-agent', 'classifier-unavailable', 'pinned-agent-unknown'],
    description: "Why the decision is not simply the classifier's pick.",
  })
  reason?: string;
}
