import { Injectable } from '@nestjs/common';
import type { ChatMessage } from '../inference/inference.types';
import type { AssembledPrompt, PromptSpec } from './prompt.types';

/**
 * Renders a PromptSpec as chat messages so that the longest possible token prefix repeats
 * between turns: [system: stable prefix] [system: summary]? [history...] [user: volatile context + message].
 * Nothing that changes per turn (date, retrieved passages) goes before the history.
 */
@Injectable()
export class PromptAssembler {
  build(spec: PromptSpec): AssembledPrompt {
    const messages: ChatMessage[] = [{ role: 'system', content: spec.stablePrefix }];
    if (spec.summary) {
      messages.push({ role: 'system', content: `Summary of the earlier conversation:\n${spec.summary}` });
    }
    messages.push(...spec.history);
    const user = spec.volatileContext ? `${spec.volatileContext}\n\n${spec.userMessage}` : spec.userMessage;
    messages.push({ role: 'user', content: user });
    return { messages, templateVersion: spec.templateVersion };
  }
}
