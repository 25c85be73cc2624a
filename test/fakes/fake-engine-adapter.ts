import type {
  EngineAdapter,
  EngineCacheCounters,
  EngineChatAnswer,
  EngineChatEvent,
  EngineChatRequest,
  EngineChatStream,
  EngineEndpoint,
} from '../../src/inference/engine-adapter';
import { EngineTokenizeUnsupported, EngineUnreachable } from '../../src/inference/inference.errors';
import type { ChatUsage, TokenizeInput } from '../../src/inference/inference.types';

/** Placeholder id of the fake chat template's framing tokens. */
const FRAME = 0;

/**
 * The fake engine's tokenizer: one token per character (its code point); its chat template adds
 * `perMessage` tokens around each message and `generationPrompt` tokens after the last.
 */
export const FAKE_TEMPLATE = { perMessage: 3, generationPrompt: 2 } as const;

/** One step of a scripted chat stream. */
export type FakeChatStep =
  | { delta: string }
  | { finish: string }
  | { usage: Partial<ChatUsage> }
  /** Moves the fake clock (see `FakeEngineAdapter.now`) forward, ms. */
  | { advanceMs: number }
  /** Waits for a gate the test opens (or for the abort signal). */
  | { wait: Promise<void> }
  /** Breaks the stream with this error (an adapter's own domain error, as a real adapter would throw). */
  | { fail: Error };

/** How the fake answers one chat: rejected before streaming, or a list of steps. */
export type FakeChatScript =
  | { reject: Error }
  | { steps: FakeChatStep[]; engineTimings?: EngineChatStream['engineTimings'] };

/** A chat the fake received. */
export interface FakeChatCall {
  endpoint: string;
  request: EngineChatRequest;
}

/** The script of an answer that streams `text` word by word, then `stop` with `usage`. */
export function answerScript(text: string, usage: Partial<ChatUsage> = {}): FakeChatScript {
  const words = text.split(/(?<= )/);
  return {
    steps: [
      ...words.map((delta) => ({ delta })),
      { finish: 'stop' },
      { usage: { promptTokens: 10, ...usage } },
    ],
  };
}

/**
 * An in-memory engine behind the ENGINE_ADAPTER token: chats follow scripts (per endpoint, else the
 * default), endpoints can be taken down (unreachable), tokenize can be unsupported, and every call is
 * recorded. A manual clock (`now`) lets a spec read exact TTFT/ITL figures: install it with
 * `jest.spyOn(performance, 'now').mockImplementation(() => fake.now)`.
 */
export class FakeEngineAdapter implements EngineAdapter {
  readonly name = 'fake';
  /** The fake clock, ms; moved by `advanceMs` steps. */
  now = 0;
  readonly chats: FakeChatCall[] = [];
  readonly tokenizeCalls: { endpoint: string; model: string; input: TokenizeInput }[] = [];
  /** Models every endpoint lists. */
  modelIds = ['fake-model'];
  /** Whether `/tokenize` exists. */
  tokenizeSupported = true;
  counters: EngineCacheCounters | null = {
    prefixCacheQueriedTokens: 0,
    prefixCacheHitTokens: 0,
    prefixCacheHitRate: null,
    promptTokens: 0,
    lmcache: null,
  };
  private readonly down = new Set<string>();
  private readonly scripts = new Map<string, FakeChatScript[]>();
  private defaultScript: FakeChatScript = answerScript('Hello from the fake engine.');

  /** Makes `endpointId` unreachable (chats, tokenize, models, health, metrics all fail to connect). */
  takeDown(endpointId: string): void {
    this.down.add(endpointId);
  }

  bringUp(endpointId: string): void {
    this.down.delete(endpointId);
  }

  /** The next chat on `endpointId` (or on any endpoint, `*`) follows `script`; queued in order. */
  script(endpointId: string, script: FakeChatScript): void {
    const queue = this.scripts.get(endpointId) ?? [];
    queue.push(script);
    this.scripts.set(endpointId, queue);
  }

  /** The script of chats no queued script covers. */
  setDefault(script: FakeChatScript): void {
    this.defaultScript = script;
  }

  private unreachable(endpoint: EngineEndpoint): EngineUnreachable | null {
    return this.down.has(endpoint.id)
      ? new EngineUnreachable(`The engine at ${endpoint.id} is unreachable: connection refused`, {
          replica: endpoint.id,
        })
      : null;
  }

  chatStream(
    endpoint: EngineEndpoint,
    request: EngineChatRequest,
    signal: AbortSignal,
  ): Promise<EngineChatStream> {
    this.chats.push({ endpoint: endpoint.id, request });
    const down = this.unreachable(endpoint);
    if (down) return Promise.reject(down);
    const script =
      this.scripts.get(endpoint.id)?.shift() ?? this.scripts.get('*')?.shift() ?? this.defaultScript;
    if ('reject' in script) return Promise.reject(script.reject);
    return Promise.resolve({
      engineTimings: script.engineTimings ?? {},
      events: this.play(script.steps, signal),
    });
  }

  /** Endpoints asked for one whole answer (`chatAnswer`), in order; those chats are in `chats` too. */
  readonly wholeAnswers: string[] = [];

  /**
   * A whole answer: the script played to its end (its clock moves, its gates are waited for), its deltas
   * joined into one, as an engine's JSON answer carries them.
   */
  async chatAnswer(
    endpoint: EngineEndpoint,
    request: EngineChatRequest,
    signal: AbortSignal,
  ): Promise<EngineChatAnswer> {
    this.wholeAnswers.push(endpoint.id);
    const stream = await this.chatStream(endpoint, request, signal);
    let text = '';
    const rest: EngineChatEvent[] = [];
    for await (const event of stream.events) {
      if (event.type === 'delta') text += event.text;
      else rest.push(event);
    }
    return {
      engineTimings: stream.engineTimings,
      events: [...(text ? [{ type: 'delta' as const, text }] : []), ...rest],
    };
  }

  private async *play(steps: readonly FakeChatStep[], signal: AbortSignal): AsyncGenerator<EngineChatEvent> {
    for (const step of steps) {
      if (signal.aborted) throw new Error('aborted');
      if ('advanceMs' in step) this.now += step.advanceMs;
      else if ('wait' in step) await untilAborted(step.wait, signal);
      else if ('fail' in step) throw step.fail;
      else if ('delta' in step) yield { type: 'delta', text: step.delta };
      else if ('finish' in step) yield { type: 'finish', reason: step.finish };
      else yield { type: 'usage', usage: step.usage };
    }
  }

  tokenize(endpoint: EngineEndpoint, model: string, input: TokenizeInput): Promise<number[]> {
    this.tokenizeCalls.push({ endpoint: endpoint.id, model, input });
    const down = this.unreachable(endpoint);
    if (down) return Promise.reject(down);
    if (!this.tokenizeSupported) {
      return Promise.reject(
        new EngineTokenizeUnsupported(`The engine at ${endpoint.id} has no /tokenize endpoint.`),
      );
    }
    const ids = (text: string): number[] => [...text].map((c) => c.codePointAt(0) ?? 0);
    if ('prompt' in input) return Promise.resolve(ids(input.prompt));
    // A ChatML-like template: FAKE_TEMPLATE.perMessage framing tokens per message, then the generation prompt.
    const out = input.messages.flatMap((m) => [FRAME, ...ids(m.content), FRAME, FRAME]);
    if (input.addGenerationPrompt ?? true) out.push(FRAME, FRAME);
    return Promise.resolve(out);
  }

  models(endpoint: EngineEndpoint): Promise<string[]> {
    const down = this.unreachable(endpoint);
    return down ? Promise.reject(down) : Promise.resolve([...this.modelIds]);
  }

  health(endpoint: EngineEndpoint): Promise<void> {
    const down = this.unreachable(endpoint);
    return down ? Promise.reject(down) : Promise.resolve();
  }

  scrapeMetrics(endpoint: EngineEndpoint): Promise<EngineCacheCounters> {
    const down = this.unreachable(endpoint);
    if (down) return Promise.reject(down);
    return this.counters ? Promise.resolve(this.counters) : Promise.reject(new Error('no metrics'));
  }
}

/** Resolves with `gate`, or rejects as soon as `signal` fires. */
function untilAborted(gate: Promise<void>, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(new Error('aborted'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    gate.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
