import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Injectable } from '@nestjs/common';
import { NOOP_TURN_TRACE } from '../observability/turn-trace';
import type { RouteDecision, TurnInput, TurnOutput } from './agents.types';
import { AnswerService } from './answer.service';

const GLOBAL_PREFIX = readFileSync(join(__dirname, 'templates', 'global.md'), 'utf8').trim();
const ASSISTANT = readFileSync(join(__dirname, 'templates', 'assistant.md'), 'utf8').trim();
const TEMPLATE_VERSION = 'global@1+assistant@1';

/**
 * Runs one turn: route -> agent (builds its PromptSpec) -> answer.
 */
@Injectable()
export class AgentGraph {
  constructor(private readonly answers: AnswerService) {}

  async run(input: TurnInput): Promise<TurnOutput> {
    const trace = input.trace ?? NOOP_TURN_TRACE;
    const routeSpan = trace.span('route', { pinnedAgent: input.pinnedAgent });
    const route: RouteDecision = input.pinnedAgent
      ? { agent: input.pinnedAgent, score: 1, classifier: 'pinned' }
      : { agent: 'assistant', score: 1, classifier: 'default' };
    routeSpan.end(route);
    return this.answers.answer({
      input,
      route,
      prompt: {
        stablePrefix: `${GLOBAL_PREFIX}\n\n${ASSISTANT}`,
        templateVersion: TEMPLATE_VERSION,
        history: input.history,
        userMessage: input.userMessage,
      },
    });
  }
}
