import { lexicalEmbedding } from '../../common/lexical-embedding';
import { mulberry32 } from '../../common/prng';
import { sampleAgents } from '../../../test/factories/agents';
import { IntentIndex } from './intent-index';
import { IntentRanker } from './intent-ranker';
import { SoftmaxIntentModel } from './softmax-intent-model';

/** Points around three centres in 8 dimensions, labelled by their centre (seeded). */
function clusters(n: number, seed: number): { vectors: number[][]; labels: number[] } {
  const random = mulberry32(seed);
  const centres = [0, 1, 2].map((c) => Array.from({ length: 8 }, (_, d) => (d % 3 === c ? 1 : 0)));
  const vectors: number[][] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    vectors.push(centres[c].map((x) => x + (random() - 0.5) * 0.8));
    labels.push(c);
  }
  return { vectors, labels };
}

const argmax = (xs: ArrayLike<number>): number => {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
};

describe('SoftmaxIntentModel', () => {
  it('should learn labelled clusters and classify unseen points of them', async () => {
    const train = clusters(60, 1);
    const model = await SoftmaxIntentModel.train(train.vectors, train.labels, 3, { epochs: 100 });
    const test = clusters(90, 2);
    const right = test.vectors.filter((v, i) => argmax(model.logProbabilities(v)) === test.labels[i]).length;
    expect(right / test.vectors.length).toBeGreaterThanOrEqual(0.95);
  });

  it('should give log-probabilities that sum to one', async () => {
    const train = clusters(30, 3);
    const model = await SoftmaxIntentModel.train(train.vectors, train.labels, 3, { epochs: 20 });
    const logP = model.logProbabilities(train.vectors[0]);
    expect(Array.from(logP).reduce((s, x) => s + Math.exp(x), 0)).toBeCloseTo(1, 6);
    expect(Math.max(...logP)).toBeLessThanOrEqual(0);
  });

  it('should refuse inputs it cannot train on or score', async () => {
    await expect(SoftmaxIntentModel.train([], [], 2)).rejects.toThrow(RangeError);
    await expect(SoftmaxIntentModel.train([[1, 0]], [0, 1], 2)).rejects.toThrow('1 vectors but 2 labels');
    await expect(SoftmaxIntentModel.train([[1, 0]], [2], 2)).rejects.toThrow('label 2 outside 0..1');
    await expect(SoftmaxIntentModel.train([[1, 0], [1]], [0, 1], 2)).rejects.toThrow('dimensions');
    await expect(SoftmaxIntentModel.train([[1, 0]], [0], 1)).rejects.toThrow('at least two classes');
    const model = await SoftmaxIntentModel.train(
      [
        [1, 0],
        [0, 1],
      ],
      [0, 1],
      2,
      { epochs: 5 },
    );
    expect(() => model.logProbabilities([1, 0, 0])).toThrow(RangeError);
  });
});

describe('IntentRanker', () => {
  const embed = (text: string): number[] => lexicalEmbedding(text, 384);
  const prototypes = sampleAgents().map((a) => ({ agent: a.name, vectors: a.examples.map(embed) }));

  it.each([
    ['Can you book me a train to Brussels?', 'travel'],
    ['I was charged twice on my card, refund please', 'billing'],
    ['Is it going to rain in Berlin tomorrow?', 'weather'],
  ])('should rank %j first for %s with the trained model', async (message, agent) => {
    const ranker = await IntentRanker.build(prototypes, 'softmax');
    expect(ranker.model).not.toBeNull();
    expect(ranker.score(embed(message))[0].agent).toBe(agent);
  });

  it("should keep the index's similarity as every agent's score, so the floor means the same", async () => {
    const ranker = await IntentRanker.build(prototypes, 'softmax');
    const index = IntentIndex.build(prototypes);
    const message = embed('Send the invoice for my flight to Rome');
    const byAgent = new Map(index.score(message).map((s) => [s.agent, s.score]));
    for (const s of ranker.score(message)) expect(s.score).toBe(byAgent.get(s.agent));
  });

  it('should rank by the index alone when asked for nearest neighbours or given one agent', async () => {
    const message = embed('Book a hotel in Rome');
    const nearest = await IntentRanker.build(prototypes, 'nearest');
    expect(nearest.model).toBeNull();
    expect(nearest.score(message)).toEqual(IntentIndex.build(prototypes).score(message));
    const alone = await IntentRanker.build(prototypes.slice(0, 1), 'softmax');
    expect(alone.model).toBeNull();
  });
});
