import { routableAgent, sampleAgents } from '../../../test/factories/agents';
import type { InferenceService } from '../../inference/inference.service';
import type { ChatRequest, ChatResult } from '../../inference/inference.types';
import { LlmIntentClassifier, pickAgent } from './llm-intent.classifier';

const reply = (content: string): ChatResult => ({
  content,
  finishReason: 'stop',
  model: 'm',
  replica: 'r',
  usage: { promptTokens: 10, completionTokens: 2, cachedTokens: 0 },
  timings: { ttftMs: 1, totalMs: 2, itlMs: 0 },
});

describe('LlmIntentClassifier', () => {
  const build = (answer: string) => {
    const requests: ChatRequest[] = [];
    const inference = {
      chat: (request: ChatRequest) => {
        requests.push(request);
        return Promise.resolve(reply(answer));
      },
    };
    return { sut: new LlmIntentClassifier(inference as unknown as InferenceService), requests };
  };

  it('should score the agent the engine names 1 and the others 0', async () => {
    const { sut } = build('billing');
    const result = await sut.classify('I was charged twice', sampleAgents());
    expect(result).toEqual({
      classifier: 'llm',
      scores: [
        { agent: 'billing', score: 1 },
        { agent: 'travel', score: 0 },
        { agent: 'weather', score: 0 },
      ],
    });
  });

  it('should send a byte-identical agent list before the message, greedy and short, with the tenant salt', async () => {
    const { sut, requests } = build('none');
    const agents = sampleAgents();
    await sut.classify('first message', agents, { cacheSalt: 'salt-a', routingKey: 'conv-1' });
    await sut.classify('second message', agents, { cacheSalt: 'salt-a', routingKey: 'conv-1' });
    expect(requests[0].messages[0]).toEqual(requests[1].messages[0]);
    expect(requests[0].messages[0].content).toContain(
      '- travel: travel agent Examples: "Book me a flight to Rome"',
    );
    expect(requests[1].messages[1]).toEqual({ role: 'user', content: 'second message' });
    expect(requests[0]).toMatchObject({
      temperature: 0,
      maxTokens: 8,
      cacheSalt: 'salt-a',
      routingKey: 'conv-1',
    });
  });

  it('should score every agent 0 when the answer names none', async () => {
    const { sut } = build('I think the weatherman could help');
    const result = await sut.classify('?', sampleAgents());
    expect(result.scores.every((s) => s.score === 0)).toBe(true);
  });
});

describe('pickAgent', () => {
  const agents = [routableAgent('billing', ['x']), routableAgent('card-support', ['y'])];

  it.each([
    ['billing', 'billing'],
    ['  Billing.\n', 'billing'],
    ['Agent: card-support', 'card-support'],
    ['none', null],
    ['', null],
  ])('should read %j as %j', (answer, expected) => {
    expect(pickAgent(answer, agents)).toBe(expected);
  });
});
