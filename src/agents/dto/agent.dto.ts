import { ApiProperty } from '@nestjs/swagger';
import type { RegisteredAgent } from '../chat-agent';

export class AgentDto {
  @ApiProperty({
    example: 'summarizer',
    description: 'Routing target; pin it with `agent` when creating a conversation.',
  })
  name!: string;

  @ApiProperty({
    example: 'Summarizes the conversation so far: recaps, key points, decisions and open questions.',
  })
  description!: string;

  @ApiProperty({
    example: 'global@1+summarizer@1',
    description:
      'Versions of the templates of its stable prefix (global prefix + agent instructions), as turns record it.',
  })
  templateVersion!: string;

  @ApiProperty({ description: 'Whether the intent classifier can pick it (it declares examples).' })
  routable!: boolean;

  @ApiProperty({ description: 'Examples the intent classifier compares messages with.' })
  exampleCount!: number;

  @ApiProperty({ description: 'Whether it answers turns that no agent claims confidently (AGENT_FALLBACK).' })
  fallback!: boolean;

  static from(agent: RegisteredAgent, fallback: string): AgentDto {
    return {
      name: agent.name,
      description: agent.description,
      templateVersion: agent.prefix.templateVersion,
      routable: agent.examples.length > 0,
      exampleCount: agent.examples.length,
      fallback: agent.name === fallback,
    };
  }
}

export class AgentListDto {
  @ApiProperty({ type: [AgentDto] }) data!: AgentDto[];
}
