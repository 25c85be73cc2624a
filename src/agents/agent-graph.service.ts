import { join } from 'node:path';
import { Injectable } from '@nestjs/common';
import { composeStablePrefix, loadPromptTemplate } from '../context/prompt-template';
import { NOOP_TURN_TRACE } from '../observability/turn-trace';
import type { RouteDecision, TurnInput, TurnOutput } from './agents.types';
import { AnswerService } from './answer.service';

/** Stable prefix of the assistant agent: versioned templates (front matter `name`, `version`). */
const ASSISTANT_PREFIX = composeStablePrefix([
  loadPromptTemplate(join(__dirname, 'templates', 'global.md')),
  loadPromptTemplate(join(__dirname, 'templates', 'assistant.md')),
]);

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
        stablePrefix: ASSISTANT_PREFIX.text,
        templateVersion: ASSISTANT_PREFIX.templateVersion,
        history: input.history,
        userMessage: input.userMessage,
      },
    });
  }
}
