/** One method's ranking: ids, best first. */
export type Ranking = readonly string[];

/** A fused result: its score and its 1-based rank in each input ranking that holds it. */
export interface FusedItem {
  id: string;
  /** sum over rankings of 1 / (k + rank). */
  score: number;
  ranks: (number | undefined)[];
}

/**
 * Reciprocal rank fusion (Cormack, Clarke and Büttcher, "Reciprocal Rank Fusion outperforms
 * Condorcet and individual rank learning methods", SIGIR 2009): score(d) = sum over rankings r of
 * 1 / (k + rank_r(d)), ranks 1-based; an item absent from a ranking gets nothing from it. It needs
 * no score calibration between methods (cosine similarity and ts_rank are not comparable), only ranks.
 * Ties keep the order of first appearance (earlier rankings first), so the result is deterministic.
 *
 * @param rankings each a list of ids, best first (duplicates after the first are ignored)
 * @param k the smoothing constant (60 in the paper)
 * @returns every id of any ranking, highest fused score first
 */
export function reciprocalRankFusion(rankings: readonly Ranking[], k = 60): FusedItem[] {
  if (!(k >= 0)) throw new RangeError(`reciprocalRankFusion: k must be >= 0, got ${k}`);
  const items = new Map<string, FusedItem & { order: number }>();
  rankings.forEach((ranking, r) => {
    const seen = new Set<string>();
    ranking.forEach((id) => {
      if (seen.has(id)) return;
      seen.add(id);
      let item = items.get(id);
      if (!item) {
        item = { id, score: 0, ranks: rankings.map(() => undefined), order: items.size };
        items.set(id, item);
      }
      const rank = seen.size;
      item.ranks[r] = rank;
      item.score += 1 / (k + rank);
    });
  });
  return [...items.values()]
    .sort((a, b) => b.score - a.score || a.order - b.order)
    .map(({ id, score, ranks }) => ({ id, score, ranks }));
}
