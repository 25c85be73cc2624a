import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import DataLoader from 'dataloader';
import OpenAI from 'openai';
import { Agent, RetryAgent } from 'undici';
import { EmbeddingsConfig } from '../config/caching.config';
import { InferenceConfig } from '../config/inference.config';
import { postJson } from './adapters/chat-stream-request';
import { ENGINE_ENDPOINTS, type EngineEndpoints } from './engine-endpoints.provider';
import { EmbeddingsUnavailable } from './embeddings.errors';
import { type LocalEmbedder, loadLocalEmbedder } from './local-embedder';

/** The embedding model in use and the length of its vectors. */
export interface EmbeddingModelInfo {
  model: string;
  dimension: number;
  /** Base URL of the server that answers, or `in-process` for a local model. */
  baseURL: string;
  /** Time the local model took to load, ms (local models only). */
  loadMs?: number;
}

/** What EMBEDDINGS_PROVIDER resolves to: unset = `remote` when EMBEDDINGS_URL is set, else `local`. */
export function embeddingsProvider(config: EmbeddingsConfig): 'local' | 'remote' {
  return config.EMBEDDINGS_PROVIDER ?? (config.EMBEDDINGS_URL ? 'remote' : 'local');
}

/**
 * Text embeddings from an in-process model (EMBEDDINGS_PROVIDER=local, the default:
 * EMBEDDINGS_LOCAL_MODEL, see local-embedder.ts) or over an OpenAI-compatible `/v1/embeddings`
 * (`remote`: vLLM serving an embedding model, the engine simulator's lexical vectors, or any provider):
 * the model is resolved once through the `openai` SDK, and each batch is one undici POST (`postJson`, about
 * a millisecond of CPU less per call than the SDK's fetch), retried once on a connection error, 429 or 5xx
 * (undici's RetryAgent, as the SDK's `maxRetries: 1` did).
 *
 * Remote model and dimension come from EMBEDDINGS_MODEL / EMBEDDINGS_DIMENSION, else from the server:
 * the first listed model whose id contains `embed`, and the length of a probe vector. Single texts
 * are batched by a DataLoader (up to EMBEDDINGS_BATCH_SIZE inputs): those asked for in the same tick,
 * and for the local model also those that arrive while it computes the batch before (one at a time).
 */
@Injectable()
export class EmbeddingsService implements OnApplicationShutdown {
  private readonly logger = new Logger(EmbeddingsService.name);
  private readonly clients: { baseURL: string; client: OpenAI }[];
  private readonly apiKey: string;
  /** The per-batch requests' connection pool, retrying once (POST included: embedding is idempotent). */
  private readonly dispatcher = new RetryAgent(new Agent(), { maxRetries: 1, methods: ['POST'] });
  private cursor = 0;
  private info?: Promise<EmbeddingModelInfo>;
  private local?: LocalEmbedder;
  private readonly loader: DataLoader<string, number[]>;
  /** The local model's batch being computed, if any (the next one waits for it). */
  private localBatch?: Promise<unknown>;
  private closed = false;

  constructor(
    private readonly config: EmbeddingsConfig,
    inference: InferenceConfig,
    @Inject(ENGINE_ENDPOINTS) endpoints: EngineEndpoints,
  ) {
    const baseURLs = config.EMBEDDINGS_URL ? [config.EMBEDDINGS_URL] : endpoints.baseURLs;
    const apiKey =
      config.EMBEDDINGS_API_KEY ?? (config.EMBEDDINGS_URL ? undefined : inference.INFERENCE_API_KEY);
    this.loader = new DataLoader<string, number[]>((texts) => this.loadBatch(texts), {
      cache: false,
      maxBatchSize: config.EMBEDDINGS_BATCH_SIZE,
      batchScheduleFn: (dispatch) => {
        const next = (): void => void setImmediate(dispatch);
        if (this.localBatch) void this.localBatch.finally(next);
        else next();
      },
    });
    this.apiKey = apiKey ?? 'unused';
    this.clients = baseURLs.map((baseURL) => ({
      baseURL,
      client: new OpenAI({
        baseURL,
        apiKey: this.apiKey,
        timeout: config.EMBEDDINGS_TIMEOUT_MS,
        maxRetries: 1,
      }),
    }));
  }

  /**
   * Resolves (once) the model and its dimension, probing the server.
   * @throws EmbeddingsUnavailable when the server does not answer, lists no embedding model, or
   *   returns vectors of another length than EMBEDDINGS_DIMENSION
   */
  describe(): Promise<EmbeddingModelInfo> {
    this.info ??= (
      embeddingsProvider(this.config) === 'local' ? this.loadLocal() : this.resolveModel()
    ).catch((e: unknown) => {
      this.info = undefined;
      throw e;
    });
    return this.info;
  }

  /**
   * Loads the in-process model now (a no-op for a remote provider, which is probed on first use), so the
   * first turns after a start do not wait for it; the model loads on its worker thread, so the event loop
   * stays free meanwhile. Never rejects: a failure is logged and the next lookup tries again.
   */
  async preload(): Promise<void> {
    if (embeddingsProvider(this.config) !== 'local') return;
    try {
      await this.describe();
    } catch (e) {
      this.logger.warn(
        `local embedding model not loaded at boot: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  }

  /** Embeds one text; concurrent calls are batched. @throws EmbeddingsUnavailable */
  embed(text: string): Promise<number[]> {
    return this.loader.load(text);
  }

  /** Embeds many texts in batches of EMBEDDINGS_BATCH_SIZE, in order. @throws EmbeddingsUnavailable */
  async embedMany(texts: readonly string[]): Promise<number[][]> {
    const out: number[][] = [];
    for (let i = 0; i < texts.length; i += this.config.EMBEDDINGS_BATCH_SIZE) {
      out.push(...(await this.request(texts.slice(i, i + this.config.EMBEDDINGS_BATCH_SIZE))));
    }
    return out;
  }

  /** One DataLoader batch; with the local model, the next batch is scheduled after this one. */
  private loadBatch(texts: readonly string[]): Promise<number[][]> {
    const batch = this.request(texts);
    if (this.local) {
      const settled = batch.then(
        () => undefined,
        () => undefined,
      );
      this.localBatch = settled;
      void settled.then(() => {
        if (this.localBatch === settled) this.localBatch = undefined;
      });
    }
    return batch;
  }

  /** Stops the local model's threads; later calls fail with EmbeddingsUnavailable. */
  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    await Promise.all([this.local?.close(), this.dispatcher.close()]);
  }

  private async request(texts: readonly string[]): Promise<number[][]> {
    if (texts.length === 0) return [];
    if (this.closed) throw new EmbeddingsUnavailable('The embeddings service has shut down.');
    const { model, dimension } = await this.describe();
    const vectors = this.local ? await this.local.embed(texts) : await this.call(model, texts);
    for (const v of vectors) {
      if (v.length !== dimension) {
        throw new EmbeddingsUnavailable(
          `The embedding model ${model} returned ${v.length} dimensions, expected ${dimension}.`,
        );
      }
    }
    return vectors;
  }

  /** One `/v1/embeddings` request, trying each server once when one cannot be reached. */
  private async call(model: string, texts: readonly string[]): Promise<number[][]> {
    let lastError: unknown;
    for (let attempt = 0; attempt < this.clients.length; attempt++) {
      const { baseURL } = this.clients[this.cursor++ % this.clients.length];
      try {
        const response = await postJson<OpenAI.CreateEmbeddingResponse>({
          url: `${baseURL.replace(/\/+$/, '')}/embeddings`,
          apiKey: this.apiKey,
          body: { model, input: texts, encoding_format: 'float' },
          timeoutMs: this.config.EMBEDDINGS_TIMEOUT_MS,
          dispatcher: this.dispatcher,
        });
        const data = [...response.data].sort((a, b) => a.index - b.index);
        if (data.length !== texts.length) {
          throw new EmbeddingsUnavailable(
            `${baseURL} returned ${data.length} embeddings for ${texts.length} inputs.`,
          );
        }
        return data.map((d) => d.embedding);
      } catch (e) {
        if (e instanceof EmbeddingsUnavailable) throw e;
        lastError = e;
        this.logger.warn(
          `embeddings request to ${baseURL} failed: ${e instanceof Error ? e.message : String(e)}`,
        );
      }
    }
    throw new EmbeddingsUnavailable(
      `No embeddings server answered: ${lastError instanceof Error ? lastError.message : String(lastError)}`,
    );
  }

  private async loadLocal(): Promise<EmbeddingModelInfo> {
    const started = performance.now();
    try {
      this.local = await loadLocalEmbedder(
        this.config.EMBEDDINGS_LOCAL_MODEL,
        this.config.EMBEDDINGS_LOCAL_THREADS,
      );
    } catch (e) {
      throw new EmbeddingsUnavailable(
        `Cannot load the local embedding model ${this.config.EMBEDDINGS_LOCAL_MODEL}: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    const { model, dimension } = this.local;
    if (this.config.EMBEDDINGS_DIMENSION !== undefined && dimension !== this.config.EMBEDDINGS_DIMENSION) {
      throw new EmbeddingsUnavailable(
        `EMBEDDINGS_DIMENSION is ${this.config.EMBEDDINGS_DIMENSION} but the local model ${model} returns ${dimension}-dimensional vectors.`,
      );
    }
    const loadMs = Math.round(performance.now() - started);
    this.logger.log(`local embedding model ${model} (${dimension} dimensions) loaded in ${loadMs} ms`);
    return { model, dimension, baseURL: 'in-process', loadMs };
  }

  private async resolveModel(): Promise<EmbeddingModelInfo> {
    const { client, baseURL } = this.clients[0];
    let model = this.config.EMBEDDINGS_MODEL;
    if (!model) {
      let ids: string[];
      try {
        ids = (await client.models.list({ timeout: this.config.EMBEDDINGS_TIMEOUT_MS })).data.map(
          (m) => m.id,
        );
      } catch (e) {
        throw new EmbeddingsUnavailable(
          `Cannot list models at ${baseURL}: ${e instanceof Error ? e.message : String(e)}`,
        );
      }
      model = ids.find((id) => /embed/i.test(id));
      if (!model) {
        throw new EmbeddingsUnavailable(
          `${baseURL} lists no embedding model (${ids.join(', ') || 'none'}); set EMBEDDINGS_MODEL.`,
        );
      }
    }
    const [probe] = await this.call(model, ['kvchat embedding probe']);
    if (this.config.EMBEDDINGS_DIMENSION !== undefined && probe.length !== this.config.EMBEDDINGS_DIMENSION) {
      throw new EmbeddingsUnavailable(
        `EMBEDDINGS_DIMENSION is ${this.config.EMBEDDINGS_DIMENSION} but ${model} returns ${probe.length}-dimensional vectors.`,
      );
    }
    return { model, dimension: probe.length, baseURL };
  }
}
