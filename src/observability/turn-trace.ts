/**
 * Tracing seam for one turn. The observability module implements it with Langfuse (trace = turn,
 * session = conversation); when Langfuse is off every method is a no-op. Code that runs a turn
 * records spans through it and never imports Langfuse itself.
 */
import type { ChatResult, ProviderRoute } from '../inference/inference.types';

export interface TraceSpan {
  /** Ends the span with its output and extra metadata. */
  end(output?: unknown, metadata?: Record<string, unknown>): void;
}

/** An engine call inside a turn. */
export interface TraceGeneration {
  /** Marks the first token (Langfuse `completionStartTime`). */
  firstToken(at?: Date): void;
  end(result: {
    output?: unknown;
    model?: string;
    usage?: { promptTokens: number; completionTokens: number; cachedTokens: number };
    /** USD of the call by token kind (Langfuse `costDetails`), from the usage ledger's prices. */
    cost?: { input: number; inputCached: number; output: number; total: number };
    metadata?: Record<string, unknown>;
    error?: string;
  }): void;
}

export interface TurnTrace {
  /** Trace id (for logs and the response), or null when tracing is off. */
  readonly id: string | null;
  span(name: string, input?: unknown, metadata?: Record<string, unknown>): TraceSpan;
  generation(name: string, input: unknown, metadata?: Record<string, unknown>): TraceGeneration;
  /** Ends the trace with the turn's output, or its error. */
  end(output?: unknown, metadata?: Record<string, unknown>): void;
}

const noopSpan: TraceSpan = { end: () => undefined };
const noopGeneration: TraceGeneration = { firstToken: () => undefined, end: () => undefined };

/** The trace used when tracing is off. */
export const NOOP_TURN_TRACE: TurnTrace = {
  id: null,
  span: () => noopSpan,
  generation: () => noopGeneration,
  end: () => undefined,
};

/**
 * Langfuse metadata naming who answered an engine call (see {@link generationRouteMetadata}). A type alias,
 * not an interface, so it is assignable to `TraceGeneration.end`'s `Record<string, unknown>` metadata.
 */
export type GenerationRouteMetadata = {
  /** Replica id (its base URL). */
  replica: string;
  /** The catalogue deployment that answered; present only when the result names its provider route. */
  deployment?: string;
  /** That deployment's provider (`vllm`, `openai`, `anthropic`). */
  provider?: string;
  /** Every catalogue target tried, in order, the answering one last (ProviderRoute.attempts). */
  attempts?: ProviderRoute['attempts'];
};

/**
 * The replica and provider route of an engine call, as `TraceGeneration.end` metadata: `replica` always;
 * `deployment`, `provider` and `attempts` only when `result.provider` is set (absent from cache replays and
 * engine-only calls). Use it as the metadata, or spread it and add keys. Pure; throws nothing.
 */
export function generationRouteMetadata(
  result: Pick<ChatResult, 'replica' | 'provider'>,
): GenerationRouteMetadata {
  return {
    replica: result.replica,
    ...(result.provider
      ? {
          deployment: result.provider.deployment,
          provider: result.provider.provider,
          attempts: result.provider.attempts,
        }
      : {}),
  };
}
