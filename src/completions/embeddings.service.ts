import { Injectable } from '@nestjs/common';
import type { AuthContext } from '../auth/api-key.service';
import { EmbeddingCache, toFloat32 } from '../caching/embedding-cache';
import { PayloadTooLarge } from '../common/domain-error';
import { AppConfig } from '../config/app.config';
import { EngineEmbeddingsClient } from '../inference/engine-embeddings.client';
import { MetricsService } from '../observability/metrics.service';
import { TracingService } from '../observability/tracing.service';
import { UsageRecorder } from '../usage/usage-recorder.service';
import { ModelNotFound } from './completions.errors';

/** A validated `/v1/embeddings` request. */
export interface EmbeddingCommand {
  model: string;
  input: string | string[];
  encodingFormat: 'float' | 'base64';
  dimensions?: number;
  requestId: string;
  signal?: AbortSignal;
}

/** The OpenAI `list` of embeddings. */
export interface EmbeddingList {
  object: 'list';
  data: { object: 'embedding'; index: number; embedding: number[] | string }[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
  /** kvchat extension: inputs answered from the embeddings cache. */
  kvchat: { cache: { hits: number; misses: number } };
}

/**
 * OpenAI-compatible embeddings: the engine's `/v1/embeddings` behind an exact cache per tenant, model,
 * dimensions and text (EmbeddingCache). Only the texts not in the cache go to the engine, in one call;
 * `usage.prompt_tokens` counts the tokens the engine embedded (0 when every text was cached). Vectors are
 * float32 whether they come from the cache or the engine, so a hit and a miss answer the same numbers.
 * Each request is counted: Prometheus (`kvchat_embedding_*`), a Langfuse trace (`embeddings`: a cache
 * span and the engine generation) and a usage record (endpoint `embeddings`).
 */
@Injectable()
export class EmbeddingsProxyService {
  constructor(
    private readonly engine: EngineEmbeddingsClient,
    private readonly cache: EmbeddingCache,
    private readonly limits: AppConfig,
    private readonly metrics: MetricsService,
    private readonly tracing: TracingService,
    private readonly usage: UsageRecorder,
  ) {}

  /** The embedding models the engine serves. @throws EngineUnavailable */
  models(): Promise<string[]> {
    return this.engine.models();
  }

  /**
   * @throws PayloadTooLarge naming `input[i]` past MAX_MESSAGE_CHARS, ModelNotFound, Engine* errors
   */
  async embed(auth: AuthContext, command: EmbeddingCommand): Promise<EmbeddingList> {
    const started = performance.now();
    const texts = typeof command.input === 'string' ? [command.input] : command.input;
    texts.forEach((t, i) => {
      if (t.length > this.limits.MAX_MESSAGE_CHARS) {
        const field = typeof command.input === 'string' ? 'input' : `input[${i}]`;
        throw new PayloadTooLarge(
          `${field} is ${t.length} characters; the limit is ${this.limits.MAX_MESSAGE_CHARS}.`,
          {
            field,
            limit: this.limits.MAX_MESSAGE_CHARS,
          },
        );
      }
    });
    const models = await this.engine.models();
    if (!models.includes(command.model)) {
      throw new ModelNotFound(
        `The model \`${command.model}\` does not exist. Embedding models served: ${models.map((m) => `\`${m}\``).join(', ') || 'none'} (GET /v1/models).`,
        { served: models },
      );
    }
    const trace = this.tracing.startTurn({
      tenantId: auth.tenantId,
      name: 'embeddings',
      input: texts,
      metadata: { model: command.model, inputs: texts.length },
    });
    try {
      const key = { tenantId: auth.tenantId, model: command.model, dimensions: command.dimensions };
      const span = trace.span('embeddings-cache', { inputs: texts.length });
      const vectors = await this.cache.getMany(key, texts);
      const missing = [...new Set(texts.filter((_, i) => vectors[i] === null))];
      span.end({ hits: texts.length - vectors.filter((v) => v === null).length, misses: missing.length });
      let promptTokens = 0;
      if (missing.length > 0) {
        const generation = trace.generation('engine-embeddings', missing, { model: command.model });
        try {
          const fresh = await this.engine.embed(command.model, missing, command.dimensions, command.signal);
          promptTokens = fresh.promptTokens;
          generation.end({
            model: command.model,
            usage: { promptTokens, completionTokens: 0, cachedTokens: 0 },
            metadata: { inputs: missing.length },
          });
          const byText = new Map(missing.map((t, i) => [t, fresh.vectors[i].map(Math.fround)]));
          texts.forEach((t, i) => (vectors[i] ??= byText.get(t) ?? null));
          await this.cache.putMany(
            key,
            missing,
            missing.map((t) => byText.get(t) ?? []),
          );
        } catch (e) {
          generation.end({ error: e instanceof Error ? e.message : String(e) });
          throw e;
        }
      }
      const missed = new Set(missing);
      const hits = texts.filter((t) => !missed.has(t)).length;
      const misses = texts.length - hits;
      this.metrics.recordEmbeddings({
        tenantId: auth.tenantId,
        cachedInputs: hits,
        engineInputs: misses,
        promptTokens,
      });
      const latencyMs = performance.now() - started;
      this.usage.record({
        tenantId: auth.tenantId,
        keyId: auth.keyId,
        requestId: command.requestId,
        endpoint: 'embeddings',
        model: command.model,
        promptTokens,
        cachedTokens: 0,
        completionTokens: 0,
        cacheLayer: misses === 0 ? 'exact' : 'none',
        latencyMs,
      });
      trace.finish({ output: { inputs: texts.length, hits, misses }, metadata: { promptTokens, latencyMs } });
      return {
        object: 'list',
        data: vectors.map((v, index) => ({
          object: 'embedding',
          index,
          embedding: command.encodingFormat === 'base64' ? toFloat32(v ?? []).toString('base64') : (v ?? []),
        })),
        model: command.model,
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
        kvchat: { cache: { hits, misses } },
      };
    } catch (e) {
      trace.finish({ output: { error: e instanceof Error ? e.message : String(e) }, tags: ['error'] });
      throw e;
    }
  }
}
