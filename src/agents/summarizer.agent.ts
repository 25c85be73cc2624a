import { join } from 'node:path';
import type {
  ConversationSummarizer,
  SummarizeRequest,
  SummaryResult,
} from '../context/conversation-summarizer';
import { InferenceService } from '../inference/inference.service';
import { Agent } from './agent.decorator';
import type { RegisteredAgent } from './chat-agent';
import { AgentRegistry } from './agent-registry.service';

/**
 * Summaries of conversations. As a routed agent it answers turns such as "summarize our
 * conversation so far" from the history; `summarize()` is what the context-compaction job calls to
 * fold old messages into the rolling summary (bound to CONVERSATION_SUMMARIZER by
 * ConversationSummarizerModule). Both use the same stable prefix (global prefix + summarizer
 * instructions), so the job's engine calls reuse the tenant's cached global prefix.
 */
@Agent({
  name: 'summarizer',
  description: 'Summarizes the conversation so far: recaps, key points, decisions and open questions.',
  examples: [
    'Summarize our conversation so far',
    'Can you give me a summary of what we discussed?',
    'Recap the key points of this chat',
    'TL;DR of the conversation please',
    'What have we decided so far? Give me a short recap',
    'Write a brief summary of everything above',
    'List the main points we covered',
    'Sum up this discussion in a few bullet points',
    'Please summarize what we talked about',
    'Summarize this chat for me',
  ],
  template: join(__dirname, 'templates', 'summarizer.md'),
})
export class SummarizerAgent implements ConversationSummarizer {
  constructor(
    private readonly inference: InferenceService,
    private readonly registry: AgentRegistry,
  ) {}

  /**
   * Writes the updated rolling summary of a conversation (temperature 0).
   * @throws Engine* errors (EngineUnavailable, EngineTimeout, ...) and RequestAborted, as InferenceService.chat
   */
  async summarize(request: SummarizeRequest): Promise<SummaryResult> {
    const { prefix } = this.self();
    const transcript = request.messages.map((m) => `${m.role}: ${m.content}`).join('\n\n');
    const result = await this.inference.chat({
      messages: [
        { role: 'system', content: prefix.text },
        {
          role: 'user',
          content:
            `Previous summary:\n${request.previousSummary ?? '(none)'}\n\n` +
            `Messages that follow it:\n${transcript}\n\nWrite the updated summary.`,
        },
      ],
      maxTokens: request.maxTokens,
      temperature: 0,
      cacheSalt: request.cacheSalt,
      routingKey: request.conversationId,
      signal: request.signal,
    });
    return {
      content: result.content.trim(),
      model: result.model,
      templateVersion: prefix.templateVersion,
      usage: result.usage,
    };
  }

  private self(): RegisteredAgent {
    return this.registry.require('summarizer');
  }
}
