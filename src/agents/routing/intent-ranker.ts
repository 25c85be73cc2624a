import { IntentIndex, type IntentPrototypes, type IntentScore, normalised } from './intent-index';
import { INDEX_RANK_WEIGHT, SoftmaxIntentModel, type SoftmaxTrainingOptions } from './softmax-intent-model';

/** How the embedding classifier ranks agents (AGENT_ROUTING_MODEL). */
export type IntentRankingModel = 'softmax' | 'nearest';

/**
 * Ranks agents for a message vector: the nearest-neighbour IntentIndex alone (`nearest`), or that index
 * combined with a softmax regression trained on the same example vectors (`softmax`): rank =
 * log P(agent | message) + INDEX_RANK_WEIGHT x the index's rank. Either way an agent's `score` stays the
 * index's blended cosine similarity, so the routing floor means the same thing with both (how close the
 * message is to the chosen agent's examples); only the order changes.
 */
export class IntentRanker {
  private constructor(
    readonly index: IntentIndex,
    /** Null when ranking by the index alone. */
    readonly model: SoftmaxIntentModel | null,
    private readonly classOf: Map<string, number>,
  ) {}

  /**
   * Builds the index and, for `softmax` with at least two agents, trains the model.
   * @throws RangeError as IntentIndex.build
   * @throws Error when the model cannot be trained (TensorFlow.js missing)
   */
  static async build(
    prototypes: readonly IntentPrototypes[],
    ranking: IntentRankingModel,
    training: Partial<SoftmaxTrainingOptions> = {},
  ): Promise<IntentRanker> {
    const index = IntentIndex.build(prototypes);
    const classOf = new Map(index.agents.map((agent, i) => [agent, i]));
    if (ranking === 'nearest' || prototypes.length < 2) return new IntentRanker(index, null, classOf);
    const vectors: Float64Array[] = [];
    const labels: number[] = [];
    for (const { agent, vectors: own } of prototypes) {
      for (const v of own) {
        const unit = normalised(v);
        if (!unit) continue;
        vectors.push(unit);
        labels.push(classOf.get(agent) ?? 0);
      }
    }
    const model = await SoftmaxIntentModel.train(vectors, labels, index.agents.length, training);
    return new IntentRanker(index, model, classOf);
  }

  /** Agents in the index. */
  get agents(): string[] {
    return this.index.agents;
  }

  /**
   * Scores every agent for one message vector, best first.
   * @throws RangeError when `vector` has another length than the index
   */
  score(vector: readonly number[]): IntentScore[] {
    const scores = this.index.score(vector);
    const unit = this.model ? normalised(vector) : null;
    if (!this.model || !unit) return scores;
    const logP = this.model.logProbabilities(unit);
    return scores
      .map((s) => ({ ...s, rank: logP[this.classOf.get(s.agent) ?? 0] + INDEX_RANK_WEIGHT * s.rank }))
      .sort((a, b) => b.rank - a.rank || b.score - a.score);
  }
}
