import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Injectable, Logger } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { AgentsConfig } from '../config/agents.config';
import { composeStablePrefix, loadPromptTemplate, type PromptTemplate } from '../context/prompt-template';
import { AGENT_METADATA, type AgentOptions } from './agent.decorator';
import { AgentDefinitionError, AgentNotFound } from './agents.errors';
import { type ChatAgent, defaultAgentPrompt, type RegisteredAgent } from './chat-agent';

/** The prefix every agent's prompt starts with; switching agents keeps its KV blocks cached. */
export const GLOBAL_TEMPLATE_PATH = join(__dirname, 'templates', 'global.md');

const AGENT_NAME = /^[a-z][a-z0-9_-]{0,99}$/;

/**
 * Every `@Agent` provider of the application, discovered once (on first use, after the container
 * is built) through Nest's DiscoveryService, each with its composed prefix
 * `global.md + instructions`.
 * @throws AgentDefinitionError at discovery: bad or duplicate name, template whose name is not the
 *   agent's, or AGENT_FALLBACK not registered
 */
@Injectable()
export class AgentRegistry {
  private readonly logger = new Logger(AgentRegistry.name);
  private discovered?: {
    all: RegisteredAgent[];
    byName: Map<string, RegisteredAgent>;
    routable: RegisteredAgent[];
  };

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly config: AgentsConfig,
  ) {}

  /** Every agent, by name. */
  list(): readonly RegisteredAgent[] {
    return this.load().all;
  }

  /**
   * Agents the classifier may pick (those with examples). The same array on every call, so
   * classifiers can cache per-array work.
   */
  routable(): readonly RegisteredAgent[] {
    return this.load().routable;
  }

  get(name: string): RegisteredAgent | undefined {
    return this.load().byName.get(name);
  }

  /** @throws AgentNotFound */
  require(name: string): RegisteredAgent {
    const agent = this.get(name);
    if (!agent)
      throw new AgentNotFound(
        name,
        this.list().map((a) => a.name),
      );
    return agent;
  }

  /** The agent that answers when routing finds no confident match (AGENT_FALLBACK). */
  fallback(): RegisteredAgent {
    return this.require(this.config.AGENT_FALLBACK);
  }

  private load(): NonNullable<AgentRegistry['discovered']> {
    this.discovered ??= this.discover();
    return this.discovered;
  }

  private discover(): NonNullable<AgentRegistry['discovered']> {
    const global = loadPromptTemplate(GLOBAL_TEMPLATE_PATH);
    const byName = new Map<string, RegisteredAgent>();
    const seen = new Set<unknown>();
    for (const wrapper of this.discovery.getProviders({ metadataKey: AGENT_METADATA.KEY })) {
      // The same class listed in two modules is one agent.
      if (seen.has(wrapper.metatype)) continue;
      seen.add(wrapper.metatype);
      const options = this.discovery.getMetadataByDecorator(AGENT_METADATA, wrapper);
      if (!options) continue;
      if (!wrapper.isDependencyTreeStatic() || !wrapper.instance) {
        throw new AgentDefinitionError(
          `agent ${options.name}: agents must be singleton providers (not request-scoped)`,
        );
      }
      const agent = registeredAgent(options, wrapper.instance as ChatAgent, global);
      if (byName.has(agent.name)) throw new AgentDefinitionError(`agent ${agent.name} is declared twice`);
      byName.set(agent.name, agent);
    }
    const all = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
    if (!byName.has(this.config.AGENT_FALLBACK)) {
      throw new AgentDefinitionError(
        `AGENT_FALLBACK ${this.config.AGENT_FALLBACK} is not a registered agent (registered: ${all.map((a) => a.name).join(', ') || 'none'})`,
      );
    }
    this.logger.log(`agents: ${all.map((a) => `${a.name} (${a.prefix.templateVersion})`).join(', ')}`);
    return { all, byName, routable: all.filter((a) => a.examples.length > 0) };
  }
}

/** Validates one declaration and composes its prefix. @throws AgentDefinitionError */
export function registeredAgent(
  options: AgentOptions,
  instance: ChatAgent,
  global: PromptTemplate,
): RegisteredAgent {
  const { name } = options;
  if (typeof name !== 'string' || !AGENT_NAME.test(name)) {
    throw new AgentDefinitionError(`agent name ${JSON.stringify(name)} must match ${AGENT_NAME.source}`);
  }
  if (!options.description?.trim()) throw new AgentDefinitionError(`agent ${name}: description is required`);
  const template = agentTemplate(name, options.template);
  const prefix = composeStablePrefix([global, template]);
  const examples = (options.examples ?? []).map((e) => e.trim()).filter((e) => e.length > 0);
  return {
    name,
    description: options.description.trim(),
    examples,
    prefix,
    instance,
    buildPrompt: async (turn) =>
      instance.prompt ? instance.prompt(turn, prefix) : defaultAgentPrompt(turn, prefix),
  };
}

function agentTemplate(name: string, template: AgentOptions['template']): PromptTemplate {
  if (typeof template === 'string') {
    const loaded = loadPromptTemplate(template);
    if (loaded.name !== name) {
      throw new AgentDefinitionError(`agent ${name}: template ${template} is named ${loaded.name}`);
    }
    return loaded;
  }
  const text = template.text.trim();
  const version = String(template.version).trim();
  if (!text || !version)
    throw new AgentDefinitionError(`agent ${name}: an inline template needs a version and a text`);
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 12);
  return { name, version, text, hash, path: `inline:${name}` };
}
