import { join } from 'node:path';
import { Injectable, Module, Scope } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { AgentsConfig } from '../config/agents.config';
import type { PromptSpec } from '../context/prompt.types';
import { Agent } from './agent.decorator';
import { AgentRegistry } from './agent-registry.service';
import { AgentDefinitionError, AgentNotFound } from './agents.errors';
import { AssistantAgent } from './assistant.agent';
import type { AgentTurn, ChatAgent } from './chat-agent';

@Injectable()
class Greeting {
  readonly text = 'Hello from a dependency.';
}

/** An agent with a dependency and its own prompt. */
@Agent({
  name: 'greeter',
  description: 'Greets people.',
  examples: ['hello', ' ', 'good morning'],
  template: { version: 2, text: 'Role: greeter.' },
})
class GreeterAgent implements ChatAgent {
  constructor(private readonly greeting: Greeting) {}

  prompt(turn: AgentTurn, prefix: { text: string; templateVersion: string }): PromptSpec {
    return {
      stablePrefix: prefix.text,
      templateVersion: prefix.templateVersion,
      history: turn.messages,
      userMessage: turn.userMessage,
      volatileContext: this.greeting.text,
    };
  }
}

/** A feature module of another team: the agent is only listed in its providers. */
@Module({ providers: [Greeting, GreeterAgent] })
class GreeterModule {}

const turn: AgentTurn = {
  conversation: { tenantId: 't', conversationId: 'c', pinnedAgent: null, knowledgeBaseIds: [] },
  messages: [{ role: 'user', content: 'earlier', sequence: 1 }],
  userMessage: 'hi',
  route: { agent: 'greeter', score: 1, classifier: 'pinned' },
  retrieved: [],
};

async function registryWith(
  providers: unknown[],
  imports: unknown[] = [],
  config: Partial<AgentsConfig> = {},
) {
  const moduleRef = await Test.createTestingModule({
    imports: [DiscoveryModule, ...(imports as never[])],
    providers: [
      AgentRegistry,
      { provide: AgentsConfig, useValue: Object.assign(new AgentsConfig(), config) },
      ...(providers as never[]),
    ],
  }).compile();
  return moduleRef.get(AgentRegistry);
}

describe('AgentRegistry', () => {
  it('should discover @Agent providers of every module, with the global prefix first', async () => {
    const sut = await registryWith([AssistantAgent], [GreeterModule]);
    expect(sut.list().map((a) => a.name)).toEqual(['assistant', 'greeter']);
    const greeter = sut.require('greeter');
    expect(greeter.description).toBe('Greets people.');
    expect(greeter.examples).toEqual(['hello', 'good morning']);
    expect(greeter.prefix.templateVersion).toBe('global@1+greeter@2');
    const assistant = sut.require('assistant');
    expect(assistant.prefix.templateVersion).toBe('global@1+assistant@1');
    // Both prefixes start with the same global text; only what follows differs.
    const globalText = assistant.prefix.text.split('\n\nRole:')[0];
    expect(globalText.length).toBeGreaterThan(50);
    expect(greeter.prefix.text.startsWith(`${globalText}\n\nRole: greeter.`)).toBe(true);
    expect(sut.routable().map((a) => a.name)).toEqual(['greeter']);
    expect(sut.routable()).toBe(sut.routable());
    expect(sut.fallback().name).toBe('assistant');
  });

  it("should build an agent's prompt with its own prompt() and its injected dependencies", async () => {
    const sut = await registryWith([AssistantAgent], [GreeterModule]);
    await expect(sut.require('greeter').buildPrompt(turn)).resolves.toMatchObject({
      templateVersion: 'global@1+greeter@2',
      volatileContext: 'Hello from a dependency.',
      userMessage: 'hi',
    });
  });

  it('should build the default prompt for an agent without prompt(), passages in the volatile tail', async () => {
    const sut = await registryWith([AssistantAgent]);
    const spec = await sut.require('assistant').buildPrompt({
      ...turn,
      retrieved: [{ source: 'manual.md', text: 'Press the red button.' }],
    });
    expect(spec).toEqual({
      stablePrefix: sut.require('assistant').prefix.text,
      templateVersion: 'global@1+assistant@1',
      history: turn.messages,
      userMessage: 'hi',
      volatileContext: 'Passages:\n[1] (manual.md) Press the red button.',
    });
  });

  it('should throw AgentNotFound naming the registered agents', async () => {
    const sut = await registryWith([AssistantAgent]);
    expect(() => sut.require('nobody')).toThrow(AgentNotFound);
    expect(() => sut.require('nobody')).toThrow('Registered agents: assistant.');
  });

  it('should refuse two agents with one name', async () => {
    @Agent({ name: 'assistant', description: 'Another one.', template: { version: 1, text: 'x' } })
    class Impostor {}
    const sut = await registryWith([AssistantAgent, Impostor]);
    expect(() => sut.list()).toThrow(new AgentDefinitionError('agent assistant is declared twice'));
  });

  it('should refuse a missing fallback agent', async () => {
    const sut = await registryWith([], [GreeterModule]);
    expect(() => sut.list()).toThrow(
      /AGENT_FALLBACK assistant is not a registered agent \(registered: greeter\)/,
    );
  });

  it('should refuse a bad name, a template named after another agent and a request-scoped agent', async () => {
    @Agent({ name: 'Bad Name', description: 'x', template: { version: 1, text: 'x' } })
    class BadName {}
    await expect(registryWith([AssistantAgent, BadName]).then((r) => r.list())).rejects.toThrow(/must match/);

    @Agent({ name: 'other', description: 'x', template: join(__dirname, 'templates', 'assistant.md') })
    class WrongTemplate {}
    await expect(registryWith([AssistantAgent, WrongTemplate]).then((r) => r.list())).rejects.toThrow(
      /is named assistant/,
    );

    @Agent({ name: 'scoped', description: 'x', template: { version: 1, text: 'x' } })
    class Scoped {}
    await expect(
      registryWith([AssistantAgent, { provide: Scoped, useClass: Scoped, scope: Scope.REQUEST }]).then((r) =>
        r.list(),
      ),
    ).rejects.toThrow(/singleton/);
  });
});
