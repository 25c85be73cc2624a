import type { AgentTurnPayloads, AgentTurnSink } from '../../src/agents/agents.types';
import type { ComputeAnswer, ServeRequest, ServeResult } from '../../src/caching/response-cache.service';
import type { CachedAnswer, ResponseCacheReport } from '../../src/caching/response-cache.types';
import type { TurnProgressEvent } from '../../src/common/turn-events';
import { commonPrefixBlocks } from '../../src/inference/block-hash';
import { RequestAborted } from '../../src/inference/inference.errors';
import type { ChatRequest, ChatResult } from '../../src/inference/inference.types';

/** A sink that records a turn's progress events. */
export function recordingSink(signal: AbortSignal = new AbortController().signal) {
  const events: TurnProgressEvent<AgentTurnPayloads>[] = [];
  const sink: AgentTurnSink = { signal, emit: (event) => void events.push(event) };
  return { sink, events };
}

/** A stable positive id per word (so equal texts have equal token ids, as with a real tokenizer). */
const wordId = (word: string): number => {
  let h = 7;
  for (let i = 0; i < word.length; i++) h = (h * 31 + word.charCodeAt(i)) % 1_000_003;
  return h + 1;
};
const words = (text: string): string[] => text.split(/\s+/).filter((w) => w.length > 0);

/**
 * A TokenizerService stand-in: one token per whitespace-separated word, ChatML overheads (5 per message,
 * 3 for the generation prompt); counts every text it was asked to tokenize.
 */
export function wordTokenizer() {
  const counted: string[] = [];
  const overheads = { perMessage: 5, generationPrompt: 3 };
  const count = (text: string): Promise<number> => {
    counted.push(text);
    return Promise.resolve(words(text).length);
  };
  return {
    counted,
    overheads: () => Promise.resolve(overheads),
    count,
    countAll: (texts: readonly string[]) => Promise.all(texts.map(count)),
    encode: (text: string): Promise<Uint32Array> => {
      counted.push(text);
      return Promise.resolve(Uint32Array.from(words(text).map(wordId)));
    },
  };
}

/** A PrefixReuseService stand-in keeping each conversation's last block hash chain in memory. */
export function memoryPrefixReuse(blockSize: number) {
  const chains = new Map<string, { tokens: number; hashes: readonly string[] }>();
  return {
    chains,
    record(conversationId: string, promptTokens: number, blockHashes: readonly string[]) {
      const previous = chains.get(conversationId);
      chains.set(conversationId, { tokens: promptTokens, hashes: blockHashes });
      return Promise.resolve(
        previous
          ? {
              reusableTokens: commonPrefixBlocks(blockHashes, previous.hashes) * blockSize,
              previousPromptTokens: previous.tokens,
            }
          : { reusableTokens: 0, previousPromptTokens: null },
      );
    },
  };
}

/**
 * An InferenceService stand-in: streams `answer` word by word to `onToken`, then returns the result.
 * `fail(error)` makes the next calls throw it before any token; an aborted `signal` (before or between
 * deltas) throws RequestAborted, as the real one does. `pauseAfterFirstToken` holds the stream after its
 * first delta until `resume()` (to abort a turn mid-stream without timing).
 */
export function scriptedEngine(answer = 'A KV cache keeps attention keys and values.') {
  const requests: ChatRequest[] = [];
  let failure: Error | null = null;
  let gate: { wait: Promise<void>; open: () => void } | null = null;
  let firstToken: (() => void) | null = null;
  return {
    requests,
    fail(error: Error | null): void {
      failure = error;
    },
    pauseAfterFirstToken(): Promise<void> {
      let open!: () => void;
      const wait = new Promise<void>((resolve) => (open = resolve));
      gate = { wait, open };
      return new Promise<void>((resolve) => (firstToken = resolve));
    },
    resume(): void {
      gate?.open();
      gate = null;
    },
    modelName: () => Promise.resolve('sim-model'),
    async chat(request: ChatRequest): Promise<ChatResult> {
      requests.push(request);
      if (failure) throw failure;
      const deltas = answer.split(/(?<= )/);
      for (const [i, delta] of deltas.entries()) {
        if (request.signal?.aborted) throw new RequestAborted('aborted');
        request.onToken?.(delta);
        if (i === 0 && gate) {
          firstToken?.();
          const onAbort = new Promise<void>((resolve) =>
            request.signal?.addEventListener('abort', () => resolve(), { once: true }),
          );
          await Promise.race([gate.wait, onAbort]);
        }
      }
      if (request.signal?.aborted) throw new RequestAborted('aborted');
      const promptTokens = request.promptTokenIds?.length ?? 0;
      return {
        content: answer,
        finishReason: 'stop',
        model: 'sim-model',
        replica: 'http://replica-0/v1',
        usage: { promptTokens, completionTokens: deltas.length, cachedTokens: 0 },
        timings: { ttftMs: 1, totalMs: 2, itlMs: 0.1 },
      };
    },
  };
}

/**
 * A ResponseCache stand-in with its `serve` contract: exact hits by question and scope, a guard that
 * rejects the questions listed in `rejectedBy` (the engine then answers and the miss names the guard),
 * complete answers stored. Records every request (to see the embedding a turn hands over).
 */
export function memoryResponseCache() {
  const entries = new Map<string, CachedAnswer>();
  const requests: ServeRequest[] = [];
  const rejectedBy = new Map<string, string>();
  const keyOf = (request: ServeRequest): string =>
    JSON.stringify([request.scope.tenantId, request.scope.agent, request.scope.context, request.question]);
  return {
    entries,
    requests,
    rejectedBy,
    async serve(request: ServeRequest, compute: ComputeAnswer): Promise<ServeResult> {
      requests.push(request);
      const cached = entries.get(keyOf(request));
      if (cached) {
        const report: ResponseCacheReport = {
          hit: true,
          type: 'exact',
          similarity: 1,
          entryId: cached.entryId,
        };
        return {
          result: {
            content: cached.content,
            finishReason: cached.finishReason,
            model: cached.model,
            usage: { promptTokens: 0, completionTokens: 0, cachedTokens: 0 },
            replica: 'response-cache',
            timings: { ttftMs: 0, totalMs: 0, itlMs: 0 },
          },
          report,
          cached,
        };
      }
      const guard = rejectedBy.get(request.question);
      const miss: ResponseCacheReport = guard ? { hit: false, guard } : { hit: false };
      const result = await compute(miss);
      if (result.finishReason !== 'stop') return { result, report: miss, cached: null };
      const entry: CachedAnswer = {
        entryId: `entry-${entries.size + 1}`,
        tenantId: request.scope.tenantId,
        scope: request.scope.context,
        agent: request.scope.agent,
        model: request.scope.model,
        templateVersion: request.scope.templateVersion,
        question: request.question,
        content: result.content,
        finishReason: result.finishReason,
        usage: result.usage,
        createdAt: Date.now(),
      };
      entries.set(keyOf(request), entry);
      return { result, report: miss, cached: null, storedEntryId: entry.entryId };
    },
  };
}
