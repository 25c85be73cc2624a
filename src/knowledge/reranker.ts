import { Logger, type Provider } from '@nestjs/common';
import { KnowledgeConfig } from '../config/knowledge.config';

/**
 * Re-orders passages for a query, e.g. with a cross-encoder. Returns a relevance score per passage,
 * in input order (higher = more relevant).
 * @throws anything on failure (the caller keeps the fused order)
 */
export interface PassageReranker {
  readonly name: string;
  score(query: string, passages: readonly string[], signal?: AbortSignal): Promise<number[]>;
}

/** Injection token of the optional reranker (null when KNOWLEDGE_RERANK_URL is unset). */
export const PASSAGE_RERANKER = Symbol('PASSAGE_RERANKER');

/**
 * A cross-encoder behind a rerank endpoint, with the protocol the response cache's verifier speaks
 * (src/caching/verifier.ts): `POST {model, query, documents}` answered with
 * `{results: [{index, relevance_score}]}` — the Jina/Cohere shape that vLLM serves at `/v1/rerank`
 * for cross-encoder models (e.g. BAAI/bge-reranker-v2-m3).
 */
export class RerankEndpoint implements PassageReranker {
  readonly name = 'rerank';

  constructor(
    private readonly url: string,
    private readonly options: { model?: string; apiKey?: string; timeoutMs: number },
  ) {}

  async score(query: string, passages: readonly string[], signal?: AbortSignal): Promise<number[]> {
    if (passages.length === 0) return [];
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    const response = await fetch(this.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}),
      },
      body: JSON.stringify({
        ...(this.options.model ? { model: this.options.model } : {}),
        query,
        documents: passages,
      }),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    if (!response.ok) throw new Error(`reranker answered ${response.status}`);
    const body = (await response.json()) as {
      results?: { index: number; relevance_score?: number; score?: number }[];
    };
    const scores = new Array<number>(passages.length).fill(Number.NEGATIVE_INFINITY);
    for (const r of body.results ?? []) {
      const s = r.relevance_score ?? r.score;
      if (Number.isInteger(r.index) && r.index >= 0 && r.index < passages.length && typeof s === 'number') {
        scores[r.index] = s;
      }
    }
    if (scores.every((s) => s === Number.NEGATIVE_INFINITY)) throw new Error('reranker returned no scores');
    return scores;
  }
}

/** Provides the reranker configured by KNOWLEDGE_RERANK_URL, or null. */
export const rerankerProvider: Provider = {
  provide: PASSAGE_RERANKER,
  inject: [KnowledgeConfig],
  useFactory: (config: KnowledgeConfig): PassageReranker | null => {
    if (!config.KNOWLEDGE_RERANK_URL) return null;
    new Logger('Knowledge').log(`searches may rerank passages with ${config.KNOWLEDGE_RERANK_URL}`);
    return new RerankEndpoint(config.KNOWLEDGE_RERANK_URL, {
      model: config.KNOWLEDGE_RERANK_MODEL,
      apiKey: config.KNOWLEDGE_RERANK_API_KEY,
      timeoutMs: config.KNOWLEDGE_RERANK_TIMEOUT_MS,
    });
  },
};
