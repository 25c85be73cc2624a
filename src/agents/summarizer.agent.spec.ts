import { join } from 'node:path';
import { AgentsConfig } from '../config/agents.config';
import { lexicalEmbedding } from '../common/lexical-embedding';
import { AGENT_METADATA, type AgentOptions } from './agent.decorator';
import { IntentIndex } from './routing/intent-index';
import { loadPromptTemplate } from '../context/prompt-template';
import type { InferenceService } from '../inference/inference.service';
import type { ChatRequest } from '../inference/inference.types';
import type { AgentRegistry } from './agent-registry.service';
import { GLOBAL_TEMPLATE_PATH, registeredAgent } from './agent-registry.service';
import { SummarizerAgent } from './summarizer.agent';

describe('SummarizerAgent', () => {
  const build = () => {
    const requests: ChatRequest[] = [];
    const inference = {
      chat: (request: ChatRequest) => {
        requests.push(request);
        return Promise.resolve({
          content: '  The user plans a trip to Rome in May.  ',
          finishReason: 'stop',
          model: 'model-a',
          replica: 'r',
          usage: { promptTokens: 120, completionTokens: 12, cachedTokens: 48 },
          timings: { ttftMs: 1, totalMs: 2, itlMs: 0 },
        });
      },
    } as unknown as InferenceService;
    const registered = registeredAgent(
      { name: 'summarizer', description: 'd', template: join(__dirname, 'templates', 'summarizer.md') },
      {},
      loadPromptTemplate(GLOBAL_TEMPLATE_PATH),
    );
    const registry = { require: () => registered } as unknown as AgentRegistry;
    return { sut: new SummarizerAgent(inference, registry), requests, registered };
  };

  it('should fold the previous summary and the new messages with the shared prefix, greedily, for the tenant', async () => {
    const { sut, requests, registered } = build();
    const result = await sut.summarize({
      tenantId: 't',
      conversationId: 'conv-1',
      previousSummary: 'The user wants to travel.',
      messages: [
        { role: 'user', content: 'Rome in May?' },
        { role: 'assistant', content: 'May is mild in Rome.' },
      ],
      cacheSalt: 'salt-t',
      maxTokens: 300,
    });
    expect(result).toEqual({
      content: 'The user plans a trip to Rome in May.',
      model: 'model-a',
      templateVersion: 'global@1+summarizer@1',
      usage: { promptTokens: 120, completionTokens: 12, cachedTokens: 48 },
    });
    expect(requests).toHaveLength(1);
    const [system, user] = requests[0].messages;
    expect(system).toEqual({ role: 'system', content: registered.prefix.text });
    expect(system.content.startsWith(loadPromptTemplate(GLOBAL_TEMPLATE_PATH).text)).toBe(true);
    expect(user.content).toBe(
      'Previous summary:\nThe user wants to travel.\n\nMessages that follow it:\n' +
        'user: Rome in May?\n\nassistant: May is mild in Rome.\n\nWrite the updated summary.',
    );
    expect(requests[0]).toMatchObject({
      temperature: 0,
      maxTokens: 300,
      cacheSalt: 'salt-t',
      routingKey: 'conv-1',
    });
  });

  it('should say there is no previous summary on the first fold', async () => {
    const { sut, requests } = build();
    await sut.summarize({
      tenantId: 't',
      conversationId: 'c',
      previousSummary: null,
      messages: [{ role: 'user', content: 'hi' }],
      cacheSalt: 's',
      maxTokens: 10,
    });
    expect(requests[0].messages[1].content.startsWith('Previous summary:\n(none)\n\n')).toBe(true);
  });

  it.each([
    ['Can you summarize what we talked about?', true],
    ['Give me a quick recap of the key points', true],
    ['What is a KV cache?', false],
    ['Write a Python function that reverses a list', false],
  ])('should declare examples that claim %j: %s (default floor)', (message, claimed) => {
    const options = Reflect.getMetadata(AGENT_METADATA.KEY, SummarizerAgent) as AgentOptions;
    const embed = (text: string): number[] => lexicalEmbedding(text, 384);
    const index = IntentIndex.build([{ agent: 'summarizer', vectors: (options.examples ?? []).map(embed) }]);
    const [best] = index.score(embed(message));
    expect(best.score >= new AgentsConfig().AGENT_ROUTING_FLOOR).toBe(claimed);
  });
});
