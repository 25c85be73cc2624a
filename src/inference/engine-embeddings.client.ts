import { Inject, Injectable, Logger } from '@nestjs/common';
import OpenAI, { APIConnectionError, APIError } from 'openai';
import { InferenceConfig } from '../config/inference.config';
import { ENGINE_ENDPOINTS, type EngineEndpoints } from './engine-endpoints.provider';
import { EngineBadRequest, EngineError, EngineUnavailable } from './inference.errors';

/** The vectors of one `/v1/embeddings` call, in input order, and the input tokens the engine counted. */
export interface EngineEmbeddings {
  vectors: number[][];
  promptTokens: number;
}

/**
 * The engine replicas' own `POST /v1/embeddings` (vLLM serving an embedding model; the simulator's
 * lexical vectors), through the `openai` SDK, for the OpenAI-compatible `/v1/embeddings` route. It is
 * not the response cache's embedder (EmbeddingsService, possibly in-process): a client asking for
 * embeddings gets the engine's model. A replica that cannot be reached or is overloaded is skipped for
 * the next one (each tried once).
 */
@Injectable()
export class EngineEmbeddingsClient {
  private readonly logger = new Logger(EngineEmbeddingsClient.name);
  private readonly clients: { baseURL: string; client: OpenAI }[];
  private cursor = 0;
  private modelIds?: Promise<string[]>;

  constructor(config: InferenceConfig, @Inject(ENGINE_ENDPOINTS) endpoints: EngineEndpoints) {
    this.clients = endpoints.baseURLs.map((baseURL) => ({
      baseURL,
      client: new OpenAI({
        baseURL,
        apiKey: config.INFERENCE_API_KEY ?? 'unused',
        timeout: config.INFERENCE_TIMEOUT_MS,
        maxRetries: 0,
      }),
    }));
  }

  /** Ids of the embedding models the engine lists (ids containing `embed`), discovered once. @throws EngineUnavailable */
  models(): Promise<string[]> {
    this.modelIds ??= this.call((client) => client.models.list({ timeout: 5000 })).then(
      (page) => page.data.map((m) => m.id).filter((id) => /embed/i.test(id)),
      (e: unknown) => {
        this.modelIds = undefined;
        throw e;
      },
    );
    return this.modelIds;
  }

  /**
   * Embeds `inputs` with `model` (float vectors; `dimensions` truncates them where the engine supports it).
   * @throws EngineBadRequest (the engine's 400, its message), EngineUnavailable (no replica answered),
   *   EngineError (anything else)
   */
  async embed(
    model: string,
    inputs: readonly string[],
    dimensions: number | undefined,
    signal?: AbortSignal,
  ): Promise<EngineEmbeddings> {
    const response = await this.call((client) =>
      client.embeddings.create(
        {
          model,
          input: [...inputs],
          encoding_format: 'float',
          ...(dimensions !== undefined ? { dimensions } : {}),
        },
        { signal },
      ),
    );
    const data = [...response.data].sort((a, b) => a.index - b.index);
    if (data.length !== inputs.length) {
      throw new EngineError(`The engine returned ${data.length} embeddings for ${inputs.length} inputs.`);
    }
    return { vectors: data.map((d) => d.embedding), promptTokens: response.usage?.prompt_tokens ?? 0 };
  }

  private async call<T>(request: (client: OpenAI) => Promise<T>): Promise<T> {
    let lastError: unknown;
    for (let attempt = 0; attempt < this.clients.length; attempt++) {
      const { client, baseURL } = this.clients[this.cursor++ % this.clients.length];
      try {
        return await request(client);
      } catch (e) {
        if (e instanceof APIError && (e.status === 400 || e.status === 422)) {
          throw new EngineBadRequest(e.message, { replica: baseURL });
        }
        const unavailable =
          e instanceof APIConnectionError ||
          (e instanceof APIError && (e.status === 429 || e.status === 503));
        if (!unavailable) {
          throw new EngineError(
            `The engine at ${baseURL} failed: ${e instanceof Error ? e.message : String(e)}`,
            {
              replica: baseURL,
            },
          );
        }
        lastError = e;
        this.logger.warn(
          `embeddings on ${baseURL} unavailable: ${e instanceof Error ? e.message : String(e)}`,
        );
      }
    }
    throw new EngineUnavailable(
      `No engine replica answered /v1/embeddings: ${lastError instanceof Error ? lastError.message : String(lastError)}`,
      { retryAfterSeconds: 1 },
    );
  }
}
