import { Injectable } from '@nestjs/common';
import { AgentsConfig } from '../../config/agents.config';
import { EmbeddingsService } from '../../inference/embeddings.service';
import type { IntentClassification, IntentClassifier, RoutableAgent } from './intent-classifier';
import { IntentIndex, representativeExamples } from './intent-index';

/**
 * Routes by embedding similarity: each agent's examples are embedded once (per candidate array)
 * over `/v1/embeddings` into an IntentIndex, then each message costs one embedding and a scan of
 * the examples. An agent with more than AGENT_ROUTING_MAX_EXAMPLES examples keeps that many
 * representative ones.
 */
@Injectable()
export class EmbeddingIntentClassifier implements IntentClassifier {
  private readonly indexes = new WeakMap<readonly RoutableAgent[], Promise<IntentIndex>>();

  constructor(
    private readonly embeddings: EmbeddingsService,
    private readonly config: AgentsConfig,
  ) {}

  /** @throws EmbeddingsUnavailable */
  async classify(text: string, agents: readonly RoutableAgent[]): Promise<IntentClassification> {
    const [index, vector] = await Promise.all([this.index(agents), this.embeddings.embed(text)]);
    return {
      classifier: 'embedding',
      scores: index.score(vector).map(({ agent, score }) => ({ agent, score })),
      embedding: vector,
    };
  }

  /** The index for `agents`, built once per array (a failed build is retried on the next call). */
  index(agents: readonly RoutableAgent[]): Promise<IntentIndex> {
    let index = this.indexes.get(agents);
    if (!index) {
      index = this.build(agents);
      this.indexes.set(agents, index);
      index.catch(() => this.indexes.delete(agents));
    }
    return index;
  }

  private async build(agents: readonly RoutableAgent[]): Promise<IntentIndex> {
    const withExamples = agents.filter((a) => a.examples.length > 0);
    const texts = withExamples.flatMap((a) => a.examples);
    const vectors = await this.embeddings.embedMany(texts);
    let offset = 0;
    const prototypes = withExamples.map((agent) => {
      let own = vectors.slice(offset, offset + agent.examples.length);
      offset += agent.examples.length;
      if (own.length > this.config.AGENT_ROUTING_MAX_EXAMPLES) {
        own = representativeExamples(own, this.config.AGENT_ROUTING_MAX_EXAMPLES).map((i) => own[i]);
      }
      return { agent: agent.name, vectors: own };
    });
    return IntentIndex.build(prototypes);
  }
}
