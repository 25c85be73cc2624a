import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireScopes } from '../auth/auth.guard';
import { ApiProblems } from '../common/api-problems.decorator';
import { AgentsConfig } from '../config/agents.config';
import { AgentRegistry } from './agent-registry.service';
import { AgentDto, AgentListDto } from './dto/agent.dto';

@ApiTags('agents')
@ApiBearerAuth()
@ApiProblems(401, 403)
@RequireScopes('chat')
@Controller('v1/agents')
export class AgentsController {
  constructor(
    private readonly registry: AgentRegistry,
    private readonly config: AgentsConfig,
  ) {}

  @Get()
  @ApiOperation({
    summary: 'List the agents',
    description:
      'Every registered agent, by name, with its description and template version. A conversation created ' +
      'with `agent` is pinned to that agent; otherwise each turn is routed by intent (see the `route` of a turn).',
  })
  @ApiOkResponse({ type: AgentListDto })
  list(): AgentListDto {
    return { data: this.registry.list().map((a) => AgentDto.from(a, this.config.AGENT_FALLBACK)) };
  }
}
