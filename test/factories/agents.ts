import type { RoutableAgent } from '../../src/agents/routing/intent-classifier';
import { lexicalEmbedding } from '../../src/common/lexical-embedding';

/** A routable agent with the given examples. */
export function routableAgent(
  name: string,
  examples: string[],
  description = `${name} agent`,
): RoutableAgent {
  return { name, description, examples };
}

/**
 * An EmbeddingsService stand-in with the simulator's lexical vectors (the default embedder), counting
 * requests; `fail` makes every call reject.
 */
export function lexicalEmbeddings(dimension = 384) {
  const calls = { embed: 0, embedMany: 0 };
  let failure: Error | null = null;
  const vector = (text: string): number[] => lexicalEmbedding(text, dimension);
  return {
    calls,
    fail(error: Error | null): void {
      failure = error;
    },
    embed(text: string): Promise<number[]> {
      calls.embed++;
      return failure ? Promise.reject(failure) : Promise.resolve(vector(text));
    },
    embedMany(texts: readonly string[]): Promise<number[][]> {
      calls.embedMany++;
      return failure ? Promise.reject(failure) : Promise.resolve(texts.map(vector));
    },
  };
}

/** Agents whose vocabularies differ: travel, billing, weather. */
export function sampleAgents(): RoutableAgent[] {
  return [
    routableAgent('travel', [
      'Book me a flight to Rome',
      'I need a hotel room in Lisbon for two nights',
      'Find a train from Paris to Brussels',
      'Change my flight booking to next Monday',
    ]),
    routableAgent('billing', [
      'Why was my card charged twice?',
      'Send me the invoice for last month',
      'How do I update my payment method?',
      'I want a refund for the duplicate payment',
    ]),
    routableAgent('weather', [
      'Will it rain in London tomorrow?',
      'What is the weather forecast for Berlin?',
      'How hot will it be in Madrid this weekend?',
      'Is snow expected in Oslo tonight?',
    ]),
  ];
}
