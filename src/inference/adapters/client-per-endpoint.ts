import type { EngineEndpoint } from '../engine-adapter';

/** What both provider SDKs (`openai`, `@anthropic-ai/sdk`) take to talk to one endpoint. */
export interface SdkClientOptions {
  baseURL: string;
  apiKey: string;
  /** Per request, ms. */
  timeout: number;
  /** Always 0: InferenceService owns retries and fallbacks. */
  maxRetries: 0;
  defaultHeaders?: Record<string, string>;
}

/**
 * One SDK client per endpoint (keyed by id and base URL), made on first use with `make`, which receives the
 * endpoint's options: its base URL, `apiKey` (the endpoint's, else `fallbackApiKey`, else `unused`), its
 * timeout (else `defaultTimeoutMs`), no SDK retries, and its headers.
 */
export class ClientPerEndpoint<C> {
  private readonly clients = new Map<string, C>();

  constructor(
    private readonly make: (options: SdkClientOptions) => C,
    private readonly defaultTimeoutMs: number,
    private readonly fallbackApiKey?: string,
  ) {}

  /** The endpoint's client, made the first time. */
  get(endpoint: EngineEndpoint): C {
    const key = `${endpoint.id} ${endpoint.baseURL}`;
    let client = this.clients.get(key);
    if (!client) {
      client = this.make({
        baseURL: endpoint.baseURL,
        apiKey: this.apiKeyOf(endpoint),
        timeout: endpoint.timeoutMs ?? this.defaultTimeoutMs,
        maxRetries: 0,
        ...(endpoint.headers ? { defaultHeaders: endpoint.headers } : {}),
      });
      this.clients.set(key, client);
    }
    return client;
  }

  /** The bearer key sent to the endpoint: its own, else the fallback, else `unused` (servers without auth). */
  apiKeyOf(endpoint: EngineEndpoint): string {
    return endpoint.apiKey ?? this.fallbackApiKey ?? 'unused';
  }
}
