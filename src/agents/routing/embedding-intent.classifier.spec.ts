import { lexicalEmbeddings, routableAgent, sampleAgents } from '../../../test/factories/agents';
import { AgentsConfig } from '../../config/agents.config';
import type { EmbeddingsService } from '../../inference/embeddings.service';
import { EmbeddingIntentClassifier } from './embedding-intent.classifier';

describe('EmbeddingIntentClassifier', () => {
  const build = (config: Partial<AgentsConfig> = {}) => {
    const embeddings = lexicalEmbeddings();
    const sut = new EmbeddingIntentClassifier(
      embeddings as unknown as EmbeddingsService,
      Object.assign(new AgentsConfig(), config),
    );
    return { sut, embeddings };
  };

  it.each([
    ['Can you book me a train to Brussels?', 'travel'],
    ['I was charged twice on my card, refund please', 'billing'],
    ['Is it going to rain in Berlin tomorrow?', 'weather'],
  ])('should score %j highest for %s', async (message, agent) => {
    const { sut } = build();
    const result = await sut.classify(message, sampleAgents());
    expect(result.classifier).toBe('embedding');
    expect(result.scores[0].agent).toBe(agent);
    expect(result.scores).toHaveLength(3);
  });

  it('should embed the examples once per agents array and one message per call', async () => {
    const { sut, embeddings } = build();
    const agents = sampleAgents();
    await sut.classify('Book a flight', agents);
    await sut.classify('Send the invoice', agents);
    expect(embeddings.calls.embedMany).toBe(1);
    expect(embeddings.calls.embed).toBe(2);
    await sut.classify('Book a flight', sampleAgents());
    expect(embeddings.calls.embedMany).toBe(2);
  });

  it('should retry building the index after the embeddings service failed', async () => {
    const { sut, embeddings } = build();
    const agents = sampleAgents();
    embeddings.fail(new Error('unreachable'));
    await expect(sut.classify('Book a flight', agents)).rejects.toThrow('unreachable');
    embeddings.fail(null);
    await expect(sut.classify('Book a flight', agents)).resolves.toMatchObject({
      scores: [{ agent: 'travel' }, {}, {}],
    });
  });

  it('should keep AGENT_ROUTING_MAX_EXAMPLES representative examples of an agent that declares more', async () => {
    const { sut } = build({ AGENT_ROUTING_MAX_EXAMPLES: 2 });
    const many = routableAgent('travel', [
      'Book me a flight to Rome',
      'Book me a flight to Rome please',
      'Book a flight to Rome for me',
      'Find a hotel in Lisbon',
    ]);
    const index = await sut.index([many, routableAgent('billing', ['Send me the invoice'])]);
    // 2 of 4 kept: one of the three near-identical flight requests and the hotel one (its own cluster).
    // Had the hotel example been dropped, the best example would share almost no words with the message.
    const [best] = index.score(await lexicalEmbeddings().embed('Find a hotel in Lisbon'));
    expect(best.agent).toBe('travel');
    expect(best.score).toBeGreaterThan(0.6);
  });
});
