import { Injectable, Logger } from '@nestjs/common';
import { AgentsConfig } from '../../config/agents.config';
import { EmbeddingsService } from '../../inference/embeddings.service';
import type { IntentClassification, IntentClassifier, RoutableAgent } from './intent-classifier';
import { representativeExamples } from './intent-index';
import { IntentRanker } from './intent-ranker';

/**
 * Routes by embedding similarity: each agent's examples are embedded once (per candidate array)
 * over `/v1/embeddings` into an IntentIndex, then each message costs one embedding and a scan of
 * the examples. An agent with more than AGENT_ROUTING_MAX_EXAMPLES examples keeps that many
 * representative ones. With AGENT_ROUTING_MODEL=softmax (default) a softmax regression trained on the
 * example vectors re-ranks the index's agents (IntentRanker); should it fail to train, the index ranks
 * alone.
 */
@Injectable()
export class EmbeddingIntentClassifier implements IntentClassifier {
  private readonly logger = new Logger(EmbeddingIntentClassifier.name);
  private readonly indexes = new WeakMap<readonly RoutableAgent[], Promise<IntentRanker>>();

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

  /** The ranker for `agents`, built once per array (a failed build is retried on the next call). */
  index(agents: readonly RoutableAgent[]): Promise<IntentRanker> {
    let index = this.indexes.get(agents);
    if (!index) {
      index = this.build(agents);
      this.indexes.set(agents, index);
      index.catch(() => this.indexes.delete(agents));
    }
    return index;
  }

  private async build(agents: readonly RoutableAgent[]): Promise<IntentRanker> {
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
    const ranking = this.config.AGENT_ROUTING_MODEL;
    try {
      return await IntentRanker.build(prototypes, ranking);
    } catch (e) {
      if (ranking === 'nearest') throw e;
      this.logger.warn(
        `could not train the softmax routing model, ranking by nearest neighbours: ${e instanceof Error ? e.message : String(e)}`,
      );
      return IntentRanker.build(prototypes, 'nearest');
    }
  }
}
