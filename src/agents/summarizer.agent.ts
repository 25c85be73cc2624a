import { join } from 'node:path';
import { InferenceService } from '../inference/inference.service';
import type { ChatMessage, ChatUsage } from '../inference/inference.types';
import { Agent } from './agent.decorator';
import type { RegisteredAgent } from './chat-agent';
import { AgentRegistry } from './agent-registry.service';

/** A rolling summary to write: the previous one plus the messages that follow it. */
export interface SummarizeRequest {
  tenantId: string;
  conversationId: string;
  /** The summary being extended (null for the first one). */
  previousSummary: string | null;
  /** Messages after the previous summary, oldest first. */
  messages: readonly Pick<ChatMessage, 'role' | 'content'>[];
  /** Server-derived engine cache salt of the tenant (TenantSaltService.saltFor). */
  cacheSalt: string;
  /** Completion budget, tokens. */
  maxTokens: number;
  signal?: AbortSignal;
}

/** A written summary. */
export interface SummaryResult {
  /** The summary text, trimmed. */
  content: string;
  model: string;
  /** Version of the prompt that wrote it (`global@1+summarizer@1`). */
  templateVersion: string;
  usage: ChatUsage;
}

/**
 * Summaries of conversations. As a routed agent it answers turns such as "summarize our
 * conversation so far" from the history; `summarize()` is what the context-compaction job calls to
 * fold old messages into the rolling summary. Both use the same stable prefix (global prefix +
 * summarizer instructions), so the job's engine calls reuse the tenant's cached global prefix.
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
export class SummarizerAgent {
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
