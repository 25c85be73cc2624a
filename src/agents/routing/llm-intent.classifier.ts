import { join } from 'node:path';
import { Injectable } from '@nestjs/common';
import { loadPromptTemplate } from '../../context/prompt-template';
import { InferenceService } from '../../inference/inference.service';
import type {
  ClassifyContext,
  IntentClassification,
  IntentClassifier,
  RoutableAgent,
} from './intent-classifier';

/** Examples per agent shown to the engine (the list is part of the cached prefix). */
const EXAMPLES_IN_PROMPT = 3;

/**
 * Asks the chat engine which agent should answer (AGENT_CLASSIFIER=llm): one short, greedy
 * completion per turn whose prompt is the router template plus the list of agents (a stable prefix,
 * cached by the engine after the first turn) and the message. The named agent scores 1, every
 * other 0; an answer that names no agent scores 0 everywhere, so the fallback answers.
 */
@Injectable()
export class LlmIntentClassifier implements IntentClassifier {
  private readonly template = loadPromptTemplate(join(__dirname, '..', 'templates', 'router.md'));
  private readonly prefixes = new WeakMap<readonly RoutableAgent[], string>();

  constructor(private readonly inference: InferenceService) {}

  /** @throws Engine* errors */
  async classify(
    text: string,
    agents: readonly RoutableAgent[],
    options: ClassifyContext = {},
    signal?: AbortSignal,
  ): Promise<IntentClassification> {
    const result = await this.inference.chat({
      messages: [
        { role: 'system', content: this.prefix(agents) },
        { role: 'user', content: text },
      ],
      maxTokens: 8,
      temperature: 0,
      cacheSalt: options.cacheSalt,
      routingKey: options.routingKey,
      signal,
    });
    const named = pickAgent(result.content, agents);
    return {
      classifier: 'llm',
      scores: agents
        .map((a) => ({ agent: a.name, score: a.name === named ? 1 : 0 }))
        .sort((a, b) => b.score - a.score),
    };
  }

  /** The router prompt for `agents` (built once per array, byte-identical afterwards). */
  prefix(agents: readonly RoutableAgent[]): string {
    let prefix = this.prefixes.get(agents);
    if (prefix === undefined) {
      const list = agents.map((a) => {
        const examples = a.examples.slice(0, EXAMPLES_IN_PROMPT).map((e) => JSON.stringify(e));
        return `- ${a.name}: ${a.description}${examples.length > 0 ? ` Examples: ${examples.join('; ')}` : ''}`;
      });
      prefix = `${this.template.text}\n\nAgents:\n${list.join('\n')}`;
      this.prefixes.set(agents, prefix);
    }
    return prefix;
  }
}

/** The agent the answer names: its first word that is an agent's name (case-insensitive), else null. */
export function pickAgent(answer: string, agents: readonly RoutableAgent[]): string | null {
  const names = new Set(agents.map((a) => a.name));
  for (const word of answer.toLowerCase().match(/[a-z][a-z0-9_-]*/g) ?? []) {
    if (names.has(word)) return word;
  }
  return null;
}
