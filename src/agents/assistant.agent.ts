import { join } from 'node:path';
import { Agent } from './agent.decorator';

/**
 * General chat. It declares no examples: it answers whatever no other agent claims with enough
 * confidence (it is the default AGENT_FALLBACK), and conversations pinned to it.
 */
@Agent({
  name: 'assistant',
  description: 'General chat: answers any question directly and concisely.',
  template: join(__dirname, 'templates', 'assistant.md'),
})
export class AssistantAgent {}
