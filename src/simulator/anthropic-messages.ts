import { createHash, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ChatMessage } from './chat-template';
import type { SimulatedEngine } from './simulated-engine';
import { type SimTool, type SimToolChoice, toolCallFor } from './structured-replies';
import { SimulatorHttpError } from './simulator.errors';
import type { SimulatorPromptCaching } from './simulator.options';

/**
 * The Anthropic Messages wire format (`POST /v1/messages`), so that the official `@anthropic-ai/sdk` can
 * be tested against the simulator: request and response shapes, the streaming events (message_start,
 * content_block_start/delta/stop, message_delta, message_stop, ping), Anthropic's error body, and prompt
 * caching as Anthropic documents it (https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching):
 * - the cacheable prefix runs in order over `tools`, `system`, then `messages`; a block with
 *   `cache_control: {type: 'ephemeral'}` ends a prefix that is written to the cache (at most 4 breakpoints);
 * - a read finds the longest cached prefix ending at a breakpoint or at one of the 20 block boundaries
 *   before it; a hit refreshes the entry's TTL (5 minutes by default);
 * - prefixes shorter than the minimum cacheable length (1024 tokens for Opus/Sonnet) are not cached;
 * - usage: `cache_read_input_tokens` (the hit), `cache_creation_input_tokens` (written past the hit),
 *   `input_tokens` (the rest, after the last breakpoint).
 * Tools: with `tools` and a last user turn that is not a `tool_result`, the reply is a `tool_use` block
 * chosen as for `/v1/chat/completions` (structured-replies.ts `toolCallFor`; `tool_choice` any/tool/none
 * map to required/{name}/none), streamed as `input_json_delta`s, `stop_reason: "tool_use"`.
 * Token counts are the simulator's tokenizer over each block's text (`role\ntext`), summed per block.
 * Generation (timing, text, faults) is the engine's, as for `/v1/chat/completions`.
 */

/** How far back from a breakpoint Anthropic looks for a cached prefix, in blocks. */
const LOOKBACK_BLOCKS = 20;
const MAX_BREAKPOINTS = 4;

interface Block {
  /** Serialised text the tokens are counted over. */
  text: string;
  cached: boolean;
  role: 'tools' | 'system' | 'user' | 'assistant';
}

interface ParsedMessages {
  model: string;
  maxTokens: number;
  stream: boolean;
  stopSequences?: string[];
  blocks: Block[];
  /** The conversation for the chat template (engine timing and reply choice). */
  chat: ChatMessage[];
  tools: SimTool[];
  toolChoice: SimToolChoice;
  /** The last user turn carries a `tool_result` (the simulator then answers text). */
  afterToolResult: boolean;
}

type Json = Record<string, unknown>;

function bad(message: string): SimulatorHttpError {
  return new SimulatorHttpError(400, message, 'invalid_request_error');
}

function blockText(b: Json, at: string): string {
  switch (b.type) {
    case 'text':
      if (typeof b.text !== 'string') throw bad(`${at}.text: Field required`);
      return b.text;
    case 'tool_use':
      return `<tool_use id="${String(b.id)}" name="${String(b.name)}">${JSON.stringify(b.input ?? {})}</tool_use>`;
    case 'tool_result': {
      const content =
        typeof b.content === 'string'
          ? b.content
          : Array.isArray(b.content)
            ? (b.content as Json[]).map((c) => (typeof c.text === 'string' ? c.text : '')).join('')
            : '';
      return `<tool_result id="${String(b.tool_use_id)}">${content}</tool_result>`;
    }
    default:
      throw bad(`${at}.type: '${String(b.type)}' is not supported by the kvchat engine simulator`);
  }
}

function isCached(b: Json): boolean {
  const cc = b.cache_control as Json | undefined | null;
  if (cc === undefined || cc === null) return false;
  if (cc.type !== 'ephemeral') throw bad(`cache_control.type: Input should be 'ephemeral'`);
  return true;
}

/** Parses a Messages request body. @throws SimulatorHttpError 400 naming the field, as Anthropic does */
export function parseMessagesRequest(body: unknown): ParsedMessages {
  if (typeof body !== 'object' || body === null) throw bad('The request body must be a JSON object');
  const o = body as Json;
  if (typeof o.model !== 'string' || o.model === '') throw bad('model: Field required');
  if (typeof o.max_tokens !== 'number' || !Number.isInteger(o.max_tokens) || o.max_tokens < 1)
    throw bad('max_tokens: Field required (a positive integer)');
  if (!Array.isArray(o.messages) || o.messages.length === 0)
    throw bad('messages: at least one message is required');
  const blocks: Block[] = [];
  const tools: SimTool[] = [];
  for (const t of Array.isArray(o.tools) ? (o.tools as Json[]) : []) {
    if (typeof t.name !== 'string') throw bad('tools.name: Field required');
    const schema = t.input_schema;
    tools.push({
      name: t.name,
      ...(typeof schema === 'object' && schema !== null ? { parameters: schema as Json } : {}),
    });
  }
  const tc = o.tool_choice as Json | undefined | null;
  const toolChoice: SimToolChoice =
    tc?.type === 'any'
      ? 'required'
      : tc?.type === 'none'
        ? 'none'
        : tc?.type === 'tool' && typeof tc.name === 'string'
          ? { name: tc.name }
          : 'auto';
  let afterToolResult = false;
  for (const [i, t] of (Array.isArray(o.tools) ? (o.tools as Json[]) : []).entries()) {
    blocks.push({
      role: 'tools',
      text: JSON.stringify({ name: t.name, input_schema: t.input_schema }),
      cached: isCached(t),
    });
    void i;
  }
  const system: string[] = [];
  if (typeof o.system === 'string') {
    blocks.push({ role: 'system', text: o.system, cached: false });
    system.push(o.system);
  } else if (Array.isArray(o.system)) {
    for (const [i, b] of (o.system as Json[]).entries()) {
      const text = blockText(b, `system.${i}`);
      blocks.push({ role: 'system', text, cached: isCached(b) });
      system.push(text);
    }
  }
  const chat: ChatMessage[] = system.length > 0 ? [{ role: 'system', content: system.join('\n\n') }] : [];
  for (const [i, raw] of (o.messages as Json[]).entries()) {
    if (raw.role !== 'user' && raw.role !== 'assistant')
      throw bad(`messages.${i}.role: Input should be 'user' or 'assistant'`);
    const role = raw.role;
    const parts: string[] = [];
    if (typeof raw.content === 'string') {
      afterToolResult = false;
      blocks.push({ role, text: raw.content, cached: false });
      parts.push(raw.content);
    } else if (Array.isArray(raw.content)) {
      afterToolResult = (raw.content as Json[]).some((b) => b.type === 'tool_result');
      for (const [j, b] of (raw.content as Json[]).entries()) {
        const text = blockText(b, `messages.${i}.content.${j}`);
        blocks.push({ role, text, cached: isCached(b) });
        parts.push(text);
      }
    } else throw bad(`messages.${i}.content: Field required`);
    chat.push({ role, content: parts.join('\n') });
  }
  const breakpoints = blocks.filter((b) => b.cached).length;
  if (breakpoints > MAX_BREAKPOINTS) {
    throw bad(
      `A maximum of ${MAX_BREAKPOINTS} blocks with cache_control may be provided. Found ${breakpoints}.`,
    );
  }
  const stop = o.stop_sequences;
  return {
    model: o.model,
    maxTokens: o.max_tokens,
    stream: o.stream === true,
    ...(Array.isArray(stop) ? { stopSequences: stop.filter((x): x is string => typeof x === 'string') } : {}),
    blocks,
    chat,
    tools,
    toolChoice,
    afterToolResult,
  };
}

/** Anthropic's usage of one request's prompt, tokens. */
export interface PromptCacheUsage {
  input_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

/**
 * Anthropic's prompt cache: entries keyed by the hash chain of the blocks up to a boundary (model
 * included), each with an expiry refreshed on every hit.
 */
export class AnthropicPromptCache {
  private readonly entries = new Map<string, number>();

  constructor(
    private readonly options: SimulatorPromptCaching,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Looks the prompt up, then writes its breakpoints past the hit.
   * @param tokens tokens of each block, in order
   */
  apply(model: string, blocks: readonly Block[], tokens: readonly number[]): PromptCacheUsage {
    const now = this.now();
    const keys: string[] = [];
    const cumulative: number[] = [];
    let hash = createHash('sha256').update(model).digest('hex');
    let sum = 0;
    for (const [i, b] of blocks.entries()) {
      hash = createHash('sha256').update(hash).update(b.role).update('\u0000').update(b.text).digest('hex');
      keys.push(hash);
      sum += tokens[i];
      cumulative.push(sum);
    }
    const total = sum;
    const breakpoints = blocks.flatMap((b, i) => (b.cached ? [i] : []));
    // The longest live prefix ending at a breakpoint or within the 20 boundaries before one.
    let hit = -1;
    for (const bp of breakpoints) {
      for (let i = bp; i >= Math.max(0, bp - LOOKBACK_BLOCKS); i--) {
        const expires = this.entries.get(keys[i]);
        if (expires !== undefined && expires > now) {
          if (i > hit) hit = i;
          break;
        }
      }
    }
    const read = hit >= 0 ? cumulative[hit] : 0;
    if (hit >= 0) this.entries.set(keys[hit], now + this.options.ttlMs);
    let written = read;
    for (const bp of breakpoints) {
      if (bp <= hit || cumulative[bp] < this.options.minTokens) continue;
      this.entries.set(keys[bp], now + this.options.ttlMs);
      written = Math.max(written, cumulative[bp]);
    }
    this.evictExpired(now);
    return {
      input_tokens: total - written,
      cache_creation_input_tokens: written - read,
      cache_read_input_tokens: read,
    };
  }

  private evictExpired(now: number): void {
    if (this.entries.size < 10_000) return;
    for (const [k, expires] of this.entries) if (expires <= now) this.entries.delete(k);
  }
}

const STOP_REASONS: Record<string, string> = { stop: 'end_turn', length: 'max_tokens' };

/** `POST /v1/messages` on the simulator app. */
export function registerAnthropicMessages(app: FastifyInstance, engine: SimulatedEngine): void {
  const cache = new AnthropicPromptCache(engine.options.promptCaching);
  app.post('/v1/messages', async (req, reply) => {
    try {
      return await answer(engine, cache, req.body, reply);
    } catch (err) {
      if (reply.raw.headersSent) {
        reply.raw.destroy();
        return reply;
      }
      if (!(err instanceof SimulatorHttpError)) throw err;
      if (err.retryAfterSeconds !== null) void reply.header('retry-after', String(err.retryAfterSeconds));
      return reply
        .status(err.status)
        .send({ type: 'error', error: { type: anthropicErrorType(err.status), message: err.message } });
    }
  });
}

/** Anthropic's error types by status (https://docs.anthropic.com/en/api/errors). */
function anthropicErrorType(status: number): string {
  switch (status) {
    case 400:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 529:
      return 'overloaded_error';
    default:
      return 'api_error';
  }
}

async function answer(
  engine: SimulatedEngine,
  cache: AnthropicPromptCache,
  body: unknown,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const parsed = parseMessagesRequest(body);
  const tokens = await Promise.all(
    parsed.blocks.map(async (b) => (await engine.tokenizer.encodeAsync(`${b.role}\n${b.text}`)).length),
  );
  const promptIds = await engine.tokenizeChatAsync(parsed.chat, true);
  engine.validateLength(promptIds.length, parsed.maxTokens);
  const abort = new AbortController();
  const raw = reply.raw;
  raw.on('close', () => {
    if (!raw.writableFinished) abort.abort();
  });
  const lastUser = [...parsed.chat].reverse().find((m) => m.role === 'user')?.content;
  const toolCall = parsed.afterToolResult ? null : toolCallFor(parsed.chat, parsed);
  const toolUseId = `toolu_sim${randomUUID().replace(/-/g, '').slice(0, 22)}`;
  const stopReasonOf = (finish: string): string =>
    toolCall && finish === 'stop' ? 'tool_use' : (STOP_REASONS[finish] ?? 'end_turn');
  const events = engine.generate({
    ...(toolCall ? { structuredReply: toolCall.arguments } : {}),
    promptTokenIds: promptIds,
    maxTokens: parsed.maxTokens,
    stop: parsed.stopSequences,
    lastUserMessage: lastUser,
    eosTokenId: engine.tokenizer.imEndId,
    signal: abort.signal,
  });
  const id = `msg_sim${randomUUID().replace(/-/g, '').slice(0, 24)}`;
  try {
    const first = await events.next(); // injected faults throw here, before anything is written
    if (first.done || first.value.type !== 'first') throw new Error('engine produced no first event');
    // The prompt is cached once the request is accepted (a rejected request writes nothing).
    const usage = cache.apply(parsed.model, parsed.blocks, tokens);
    const message = (content: unknown[], stop: string | null, outputTokens: number): Json => ({
      id,
      type: 'message',
      role: 'assistant',
      model: parsed.model,
      content,
      stop_reason: stop,
      stop_sequence: null,
      usage: { ...usage, output_tokens: outputTokens },
    });
    if (!parsed.stream) {
      let text = '';
      for await (const ev of events) {
        if (ev.type === 'token') text += ev.delta;
        else if (ev.type === 'cut') {
          reply.hijack();
          raw.destroy();
          return reply;
        } else if (ev.type === 'done') {
          return reply.send(
            message(
              toolCall
                ? [{ type: 'tool_use', id: toolUseId, name: toolCall.name, input: parseInput(text) }]
                : [{ type: 'text', text }],
              stopReasonOf(ev.finishReason),
              ev.completionTokens,
            ),
          );
        }
      }
      throw new Error('engine stream ended without a done event');
    }
    reply.hijack();
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-kvchat-engine': 'simulator',
    });
    const send = (event: string, data: Json): void => {
      raw.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
    };
    send('message_start', { message: message([], null, 1) });
    send('content_block_start', {
      index: 0,
      content_block: toolCall
        ? { type: 'tool_use', id: toolUseId, name: toolCall.name, input: {} }
        : { type: 'text', text: '' },
    });
    send('ping', {});
    for await (const ev of events) {
      if (ev.type === 'token') {
        if (ev.delta !== '')
          send('content_block_delta', {
            index: 0,
            delta: toolCall
              ? { type: 'input_json_delta', partial_json: ev.delta }
              : { type: 'text_delta', text: ev.delta },
          });
      } else if (ev.type === 'cut') {
        raw.destroy();
        return reply;
      } else if (ev.type === 'done') {
        send('content_block_stop', { index: 0 });
        send('message_delta', {
          delta: { stop_reason: stopReasonOf(ev.finishReason), stop_sequence: null },
          usage: { output_tokens: ev.completionTokens },
        });
        send('message_stop', {});
        raw.end();
        return reply;
      }
    }
    return reply;
  } finally {
    await events.return(undefined);
  }
}

/** A tool call's generated arguments as an object (`{}` when the text was cut short). */
function parseInput(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return {};
  }
}
