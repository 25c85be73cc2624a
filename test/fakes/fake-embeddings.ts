import { lexicalEmbedding } from '../../src/common/lexical-embedding';
import type { EmbeddingModelInfo } from '../../src/inference/embeddings.service';

/**
 * An in-process stand-in for EmbeddingsService (`as unknown as EmbeddingsService` where a spec builds
 * a class by hand): deterministic lexical vectors (src/common/lexical-embedding.ts), call counts,
 * and `fail(error)` to make it reject like an unreachable embeddings server.
 */
export class FakeEmbeddings {
  readonly calls = { embed: 0, embedMany: 0 };
  private failure: Error | null = null;

  constructor(readonly dimension = 384) {}

  fail(error: Error | null): void {
    this.failure = error;
  }

  describe(): Promise<EmbeddingModelInfo> {
    if (this.failure) return Promise.reject(this.failure);
    return Promise.resolve({ model: 'fake-lexical', dimension: this.dimension, baseURL: 'in-process' });
  }

  embed(text: string): Promise<number[]> {
    this.calls.embed++;
    return this.failure
      ? Promise.reject(this.failure)
      : Promise.resolve(lexicalEmbedding(text, this.dimension));
  }

  embedMany(texts: readonly string[]): Promise<number[][]> {
    this.calls.embedMany++;
    return this.failure
      ? Promise.reject(this.failure)
      : Promise.resolve(texts.map((t) => lexicalEmbedding(t, this.dimension)));
  }
}
