import { Logger, type Provider } from '@nestjs/common';
import { CachingConfig } from '../config/caching.config';

/** A semantic candidate put to the verifier. */
export interface VerificationRequest {
  /** The new question. */
  question: string;
  /** The cached question it resembles. */
  candidateQuestion: string;
  /** The cached answer (a verifier may judge whether it answers the new question). */
  candidateAnswer: string;
  /** Cosine similarity of the two questions' embeddings. */
  similarity: number;
}

/**
 * Confirms (or not) that a semantic candidate that passed the guards answers the new question;
 * e.g. a cross-encoder, or an agent asking an LLM "same question?". A verifier that fails or times
 * out counts as a rejection: serving a wrong answer is worse than a miss.
 */
export interface ResponseCacheVerifier {
  readonly name: string;
  verify(request: VerificationRequest, signal: AbortSignal): Promise<boolean>;
}

/** Injection token of the optional verifier (the value is null when none is configured). */
export const RESPONSE_CACHE_VERIFIER = Symbol('RESPONSE_CACHE_VERIFIER');

/**
 * A cross-encoder behind a rerank endpoint: `POST {model, query, documents: [candidate]}` answered
 * with `{results: [{index, relevance_score}]}` — the Jina/Cohere shape that vLLM serves at
 * `/v1/rerank` for cross-encoder models (e.g. BAAI/bge-reranker-v2-m3). The candidate is confirmed
 * when its relevance score reaches RESPONSE_CACHE_VERIFIER_MIN_SCORE.
 */
export class RerankVerifier implements ResponseCacheVerifier {
  readonly name = 'rerank';

  constructor(
    private readonly url: string,
    private readonly options: { model?: string; apiKey?: string; minScore: number; timeoutMs: number },
  ) {}

  async verify(request: VerificationRequest, signal: AbortSignal): Promise<boolean> {
    const response = await fetch(this.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}),
      },
      body: JSON.stringify({
        ...(this.options.model ? { model: this.options.model } : {}),
        query: request.question,
        documents: [request.candidateQuestion],
      }),
      signal: AbortSignal.any([signal, AbortSignal.timeout(this.options.timeoutMs)]),
    });
    if (!response.ok) throw new Error(`verifier answered ${response.status}`);
    const body = (await response.json()) as {
      results?: { index: number; relevance_score?: number; score?: number }[];
    };
    const result = body.results?.find((r) => r.index === 0);
    const score = result?.relevance_score ?? result?.score;
    if (typeof score !== 'number') throw new Error('verifier response has no relevance_score');
    return score >= this.options.minScore;
  }
}

/** Provides the verifier configured by RESPONSE_CACHE_VERIFIER_URL, or null. */
export const verifierProvider: Provider = {
  provide: RESPONSE_CACHE_VERIFIER,
  inject: [CachingConfig],
  useFactory: (config: CachingConfig): ResponseCacheVerifier | null => {
    if (!config.RESPONSE_CACHE_VERIFIER_URL) return null;
    new Logger('ResponseCache').log(
      `semantic hits are confirmed by the verifier at ${config.RESPONSE_CACHE_VERIFIER_URL}`,
    );
    return new RerankVerifier(config.RESPONSE_CACHE_VERIFIER_URL, {
      model: config.RESPONSE_CACHE_VERIFIER_MODEL,
      apiKey: config.RESPONSE_CACHE_VERIFIER_API_KEY,
      minScore: config.RESPONSE_CACHE_VERIFIER_MIN_SCORE,
      timeoutMs: config.RESPONSE_CACHE_VERIFIER_TIMEOUT_MS,
    });
  },
};
