import { lexicalEmbedding } from '../../common/lexical-embedding';
import { IntentIndex, representativeExamples } from './intent-index';

const embed = (text: string): number[] => lexicalEmbedding(text, 384);

describe('IntentIndex', () => {
  const prototypes = [
    {
      agent: 'travel',
      vectors: ['Book me a flight to Rome', 'Find a train from Paris to Brussels'].map(embed),
    },
    {
      agent: 'billing',
      vectors: ['Why was my card charged twice?', 'Send me the invoice for last month'].map(embed),
    },
  ];

  it('should rank the agent whose examples share the message vocabulary first', () => {
    const sut = IntentIndex.build(prototypes);
    const scores = sut.score(embed('Can you book a flight from Rome to Paris?'));
    expect(scores.map((s) => s.agent)).toEqual(['travel', 'billing']);
    expect(scores[0].score).toBeGreaterThan(scores[1].score);
  });

  it('should score an exact example close to 1 and blend it with the centroid', () => {
    const sut = IntentIndex.build(prototypes);
    const [best] = sut.score(embed('Book me a flight to Rome'));
    expect(best.agent).toBe('travel');
    // best example 1, second example < 1, centroid < 1: the blend sits strictly between.
    expect(best.score).toBeGreaterThan(0.6);
    expect(best.score).toBeLessThan(1);
  });

  it('should be invariant to the scale of the vectors', () => {
    const scaled = prototypes.map((p) => ({ ...p, vectors: p.vectors.map((v) => v.map((x) => x * 7)) }));
    const q = embed('refund my duplicate card charge');
    const a = IntentIndex.build(scaled).score(q.map((x) => x * 3));
    const b = IntentIndex.build(prototypes).score(q);
    expect(a.map((s) => s.agent)).toEqual(b.map((s) => s.agent));
    a.forEach((s, i) => expect(s.score).toBeCloseTo(b[i].score, 10));
  });

  it('should lower the rank of an intent whose centroid sits close to other intents examples (hubness)', () => {
    const hub = { agent: 'generic', vectors: ['my card', 'my account', 'my money'].map(embed) };
    const specific = [
      { agent: 'card', vectors: ['my card was declined', 'my card is blocked'].map(embed) },
      { agent: 'account', vectors: ['close my account', 'my account is locked'].map(embed) },
    ];
    const plain = IntentIndex.build([hub, ...specific], { hubness: 0 });
    const corrected = IntentIndex.build([hub, ...specific]);
    const q = embed('my card');
    const rankOf = (index: IntentIndex): number => index.score(q).findIndex((s) => s.agent === 'generic');
    const genericPlain = plain.score(q).find((s) => s.agent === 'generic');
    const genericCorrected = corrected.score(q).find((s) => s.agent === 'generic');
    expect(genericCorrected?.score).toBe(genericPlain?.score);
    expect(genericCorrected!.rank).toBeLessThan(genericPlain!.rank);
    expect(rankOf(corrected)).toBeGreaterThanOrEqual(rankOf(plain));
  });

  it('should score 0 for a message with no words (zero vector)', () => {
    const sut = IntentIndex.build(prototypes);
    expect(sut.score(embed('?!')).map((s) => s.score)).toEqual([0, 0]);
  });

  it('should reject vectors of another dimension and intents without vectors', () => {
    const sut = IntentIndex.build(prototypes);
    expect(() => sut.score([1, 0, 0])).toThrow(RangeError);
    expect(() => IntentIndex.build([{ agent: 'x', vectors: [[0, 0, 0]] }])).toThrow(/no non-zero/);
    expect(() =>
      IntentIndex.build([
        {
          agent: 'x',
          vectors: [
            [1, 0],
            [1, 0, 0],
          ],
        },
      ]),
    ).toThrow(/dimensions/);
  });
});

describe('representativeExamples', () => {
  it('should pick one example from each cluster before a second from any', () => {
    const a = [1, 0, 0, 0];
    const a2 = [0.9, 0, 0, 0.3];
    const a3 = [0.9, 0, 0, -0.3];
    const b = [0, 1, 0, 0];
    const c = [0, 0, 1, 0];
    const picked = representativeExamples([a, a2, a3, b, c], 3);
    expect(picked).toHaveLength(3);
    expect(new Set(picked.map((i) => (i <= 2 ? 'a' : i === 3 ? 'b' : 'c')))).toEqual(
      new Set(['a', 'b', 'c']),
    );
    // The dense cluster's most central member comes first.
    expect(picked[0]).toBe(0);
  });

  it('should return every index when k covers the set', () => {
    expect(representativeExamples([[1], [2]], 5)).toEqual([0, 1]);
  });
});
