import { applyDecorators, Injectable } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';

/** An agent's instructions written inline instead of in a template file. */
export interface InlineAgentTemplate {
  /** Bump it whenever `text` changes: the text is part of the engine's cached prefix. */
  version: string | number;
  text: string;
}

/** What `@Agent(...)` declares about an agent class. */
export interface AgentOptions {
  /**
   * Unique name (`/^[a-z][a-z0-9_-]{0,99}$/`): the routing target, `Conversation.agent` when pinned,
   * and part of the response-cache scope.
   */
  name: string;
  /** One or two sentences for `GET /v1/agents` (and the `llm` classifier's list of agents). */
  description: string;
  /**
   * Example user messages that should reach this agent (the embedding classifier's training set).
   * An agent without examples is reached only when pinned, or as AGENT_FALLBACK.
   */
  examples?: readonly string[];
  /**
   * The agent's instructions, placed after the shared global prefix (templates/global.md): the path
   * of a template file (YAML front matter `name` = the agent's name, `version`; see
   * src/context/prompt-template.ts) or an inline `{ version, text }`.
   */
  template: string | InlineAgentTemplate;
}

/** Discovery key of `@Agent` (Nest's DiscoveryService filters providers by it). */
export const AGENT_METADATA = DiscoveryService.createDecorator<AgentOptions>();

/**
 * Marks an injectable class as an agent. Listing the class in any module's `providers` is all it
 * takes: the AgentRegistry discovers it at boot, the graph gets a node for it, the router can
 * pick it and `GET /v1/agents` lists it.
 *
 * ```ts
 * @Agent({ name: 'billing', description: 'Invoices and payments.', examples: ['Why was I charged twice?'],
 *   template: join(__dirname, 'templates', 'billing.md') })
 * export class BillingAgent {}
 * ```
 * The class may implement `ChatAgent.prompt` to shape its prompt; otherwise the default prompt is
 * used (shared prefix + instructions, the history, retrieved passages with the user message).
 */
export function Agent(options: AgentOptions): ClassDecorator {
  return applyDecorators(Injectable(), AGENT_METADATA(options));
}
