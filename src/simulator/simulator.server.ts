import { randomUUID } from 'node:crypto';
import { type ServerResponse } from 'node:http';

import { registerAnthropicMessages } from './anthropic-messages';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';

import { type ChatMessage } from './chat-template';
import { lexicalEmbedding } from '../common/lexical-embedding';
import {
  type ChatCompletionRequest,
  type CompletionRequest,
  parseChatCompletionRequest,
  parseCompletionRequest,
  parseDetokenizeRequest,
  parseEmbeddingRequest,
  parseTokenizeRequest,
  type SamplingFields,
} from './openai-protocol';
import { type EngineEvent, isAbort, SimulatedEngine } from './simulated-engine';
import { jsonReplyFor, tokenLogprob, toolCallFor, toolCallId } from './structured-replies';
import { errorBody, SimulatorHttpError } from './simulator.errors';
import {
  resolveSimulatorOptions,
  type SimulatorFaults,
  SimulatorOptionsError,
  type SimulatorOptionsInput,
} from './simulator.options';

/** A simulator listening on a port. */
export interface RunningSimulator {
  /** `http://host:port`, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** `url + '/v1'`: what an OpenAI SDK client takes as `baseURL`. */
  baseURL: string;
  port: number;
  /** The engine behind it: faults, state, metrics, prefix cache reset. */
  engine: SimulatedEngine;
  /** Stops listening (open connections are closed) and disconnects the remote tier. */
  close(): Promise<void>;
}

/** Several replicas, possibly sharing an LMCache remote tier through Redis. */
export interface RunningSimulatorCluster {
  replicas: RunningSimulator[];
  close(): Promise<void>;
}

/** Response header on every answer, so nobody mistakes the simulator for a model. */
export const ENGINE_HEADER = 'x-kvchat-engine';

/**
 * Starts one simulator (a stand-in for a vLLM + LMCache replica; answers are synthetic).
 * `options.port` 0 (the default) picks an ephemeral port. Throws `SimulatorOptionsError` on bad
 * options and an Error when the remote tier's Redis is unreachable.
 */
export async function startEngineSimulator(options: SimulatorOptionsInput = {}): Promise<RunningSimulator> {
  const resolved = resolveSimulatorOptions(options);
  const engine = await SimulatedEngine.create(resolved);
  const app = buildSimulatorApp(engine);
  try {
    await app.listen({ host: resolved.host, port: resolved.port });
  } catch (err) {
    await engine.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : resolved.port;
  const host = resolved.host === '0.0.0.0' || resolved.host === '::' ? '127.0.0.1' : resolved.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let closed = false;
  return {
    url,
    baseURL: `${url}/v1`,
    port,
    engine,
    close: async () => {
      if (closed) return;
      closed = true;
      await app.close();
      await engine.close();
    },
  };
}

/**
 * Starts `n` replicas on consecutive ports from `options.port` (or ephemeral ports when it is 0),
 * with replica ids 0..n-1. With `lmcache.remoteTierRedisUrl` they share one remote tier.
 */
export async function startEngineSimulatorCluster(
  n: number,
  options: SimulatorOptionsInput = {},
): Promise<RunningSimulatorCluster> {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`replicas: ${n} must be a positive integer`);
  const replicas: RunningSimulator[] = [];
  const basePort = options.port ?? 0;
  try {
    for (let i = 0; i < n; i++) {
      replicas.push(
        await startEngineSimulator({
          ...options,
          port: basePort === 0 ? 0 : basePort + i,
          replicaId: (options.replicaId ?? 0) + i,
        }),
      );
    }
  } catch (err) {
    await Promise.all(replicas.map((r) => r.close()));
    throw err;
  }
  return { replicas, close: async () => void (await Promise.all(replicas.map((r) => r.close()))) };
}

/** The Fastify app of one engine (not listening). Exposed for tests that inject requests. */
export function buildSimulatorApp(engine: SimulatedEngine): FastifyInstance {
  const opts = engine.options;
  const app = Fastify({ logger: opts.logger, bodyLimit: 64 * 1024 * 1024, forceCloseConnections: true });

  app.addHook('onRequest', (req, reply, done) => {
    void reply.header(ENGINE_HEADER, 'simulator');
    void reply.header(`${ENGINE_HEADER}-replica`, String(opts.replicaId));
    // Counted when the response ends, streamed (hijacked) ones too, by route as vLLM's instrumentator does.
    reply.raw.once('close', () =>
      engine.metrics.httpRequests.inc({
        handler: req.routeOptions.url ?? 'none',
        method: req.method,
        status: `${Math.floor(reply.raw.statusCode / 100)}xx`,
      }),
    );
    done();
  });

  app.setErrorHandler((err: unknown, _req, reply) => {
    if (reply.raw.headersSent) {
      reply.raw.destroy();
      return;
    }
    const { status, message, type } = describeError(err);
    if (status >= 500 && !(err instanceof SimulatorHttpError)) app.log.error(err);
    if (err instanceof SimulatorHttpError && err.retryAfterSeconds !== null)
      void reply.header('retry-after', String(err.retryAfterSeconds));
    void reply.status(status).send(errorBody(status, message, type));
  });

  app.setNotFoundHandler((_req, reply) => {
    void reply.status(404).send({ detail: 'Not Found' });
  });

  registerAnthropicMessages(app, engine);

  app.get('/health', (_req, reply) => reply.status(200).send(''));
  app.get('/version', (_req, reply) => reply.send({ version: 'kvchat-engine-simulator' }));

  app.get('/v1/models', (_req, reply) => {
    const created = Math.floor(Date.now() / 1000);
    const card = (id: string) => ({
      id,
      object: 'model',
      created,
      owned_by: 'kvchat-engine-simulator',
      root: id,
      parent: null,
      max_model_len: opts.maxModelLen,
      permission: [],
    });
    return reply.send({ object: 'list', data: [card(opts.model), card(opts.embeddingModel)] });
  });

  app.post('/v1/chat/completions', async (req, reply) => {
    const parsed = parseChatCompletionRequest(req.body);
    checkModel(parsed.model, [opts.model]);
    const promptIds = await engine.tokenizeChatAsync(parsed.messages, true);
    const lastUser = [...parsed.messages].reverse().find((m: ChatMessage) => m.role === 'user')?.content;
    return runChat(engine, parsed, promptIds, lastUser, reply);
  });

  app.post('/v1/completions', async (req, reply) => {
    const parsed: CompletionRequest = parseCompletionRequest(req.body);
    checkModel(parsed.model, [opts.model]);
    const promptIds =
      typeof parsed.prompt === 'string' ? await engine.tokenizer.encodeAsync(parsed.prompt) : parsed.prompt;
    if (promptIds.length === 0) throw new SimulatorHttpError(400, 'The prompt cannot be empty.');
    return runGeneration(engine, 'completion', parsed, promptIds, undefined, reply);
  });

  app.post('/v1/embeddings', async (req, reply) => {
    const parsed = parseEmbeddingRequest(req.body);
    checkModel(parsed.model, [opts.embeddingModel, opts.model]);
    const dimension = parsed.dimensions ?? opts.embeddingDimension;
    if (dimension > opts.embeddingDimension) {
      throw new SimulatorHttpError(
        400,
        `dimensions must be at most ${opts.embeddingDimension}, got ${dimension}`,
      );
    }
    let promptTokens = 0;
    const data = [];
    for (const [index, input] of parsed.inputs.entries()) {
      const text = typeof input === 'string' ? input : engine.tokenizer.decode(input);
      const tokens =
        typeof input === 'string' ? (await engine.tokenizer.encodeAsync(input)).length : input.length;
      if (tokens > opts.maxModelLen) {
        throw new SimulatorHttpError(
          400,
          `This model's maximum context length is ${opts.maxModelLen} tokens. However, you requested ` +
            `${tokens} tokens in the input for embedding generation. Please reduce the length of the input.`,
        );
      }
      promptTokens += tokens;
      const vector = lexicalEmbedding(text, dimension);
      data.push({
        index,
        object: 'embedding',
        embedding: parsed.encodingFormat === 'base64' ? float32Base64(vector) : vector,
      });
    }
    return reply.send({
      id: `embd-${randomUUID().replace(/-/g, '')}`,
      object: 'list',
      created: Math.floor(Date.now() / 1000),
      model: parsed.model ?? opts.embeddingModel,
      data,
      usage: {
        prompt_tokens: promptTokens,
        total_tokens: promptTokens,
        completion_tokens: 0,
        prompt_tokens_details: null,
      },
    });
  });

  app.post('/tokenize', async (req, reply) => {
    const parsed = parseTokenizeRequest(req.body);
    checkModel(parsed.model, [opts.model, opts.embeddingModel]);
    const tokens =
      parsed.kind === 'chat'
        ? await engine.tokenizeChatAsync(parsed.messages, parsed.addGenerationPrompt)
        : await engine.tokenizer.encodeAsync(parsed.prompt);
    return reply.send({ count: tokens.length, max_model_len: opts.maxModelLen, tokens, token_strs: null });
  });

  app.post('/detokenize', (req, reply) => {
    const parsed = parseDetokenizeRequest(req.body);
    checkModel(parsed.model, [opts.model, opts.embeddingModel]);
    return reply.send({ prompt: engine.tokenizer.decode(parsed.tokens) });
  });

  app.get('/metrics', async (_req, reply) => {
    const text = await engine.metrics.render();
    return reply.type(engine.metrics.contentType).send(text);
  });

  app.post('/reset_prefix_cache', async (_req, reply) => {
    await engine.resetPrefixCache();
    return reply.status(200).send('');
  });

  app.get('/sim/state', (_req, reply) => reply.send(engine.state()));
  // The prompts' prefix-reuse ceiling, when measured (SimulatorOptions.prefixLimit); 404 otherwise.
  app.get('/sim/prefix-limit', (_req, reply) =>
    opts.prefixLimit
      ? reply.send({ samples: opts.prefixLimit.list() })
      : reply.code(404).send(errorBody(404, 'prefix-limit tracking is off (SIMULATOR_PREFIX_LIMIT)')),
  );
  app.get('/sim/faults', (_req, reply) => reply.send(engine.getFaults()));
  app.post('/sim/faults', (req, reply) => reply.send(engine.setFaults(parseFaultsPatch(req.body))));

  return app;
}

type GenerationKind = 'chat' | 'completion';

/**
 * Runs a request through the engine and answers it as JSON or as SSE. Headers (with the engine's
 * timings) are written when the first token is ready, so an injected error before it is a plain
 * JSON error with its status. A client that disconnects aborts the request.
 */
async function runGeneration(
  engine: SimulatedEngine,
  kind: GenerationKind,
  parsed: SamplingFields,
  promptIds: number[],
  lastUserMessage: string | undefined,
  reply: FastifyReply,
): Promise<FastifyReply> {
  engine.validateLength(promptIds.length, parsed.maxTokens);
  const abort = new AbortController();
  const raw = reply.raw;
  raw.on('close', () => {
    if (!raw.writableFinished) abort.abort();
  });
  const model = engine.options.model;
  const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replace(/-/g, '')}`;
  const created = Math.floor(Date.now() / 1000);
  const events = engine.generate({
    promptTokenIds: promptIds,
    cacheSalt: parsed.cacheSalt,
    maxTokens: parsed.maxTokens,
    seed: parsed.seed,
    stop: parsed.stop,
    lastUserMessage,
    eosTokenId: kind === 'chat' ? engine.tokenizer.imEndId : engine.tokenizer.endOfTextId,
    signal: abort.signal,
  });

  try {
    const first = await events.next(); // throws injected errors before anything is written
    if (first.done || first.value.type !== 'first') throw new Error('engine produced no first event');
    const headers = engineHeaders(first.value, engine.options.replicaId);
    if (parsed.stream) {
      await streamEvents(kind, { id, created, model }, parsed.includeUsage, headers, events, reply);
      return reply;
    }
    let text = '';
    for await (const ev of events) {
      if (ev.type === 'token') text += ev.delta;
      else if (ev.type === 'cut') {
        reply.hijack();
        raw.destroy(); // the response never arrives: the client sees a dropped connection
        return reply;
      } else if (ev.type === 'done') {
        headers[`${ENGINE_HEADER}-e2e-ms`] = ev.e2eMs.toFixed(3);
        void reply.headers(headers);
        return reply.send(completionBody(kind, { id, created, model }, text, ev));
      }
    }
    throw new Error('engine stream ended without a done event');
  } catch (err) {
    if (isAbort(err)) {
      if (!reply.sent) reply.hijack();
      raw.destroy();
      return reply;
    }
    throw err;
  } finally {
    await events.return(undefined);
  }
}

/**
 * A chat completion with its structured parts: `n` choices (each its own generation with its own
 * seed; the later ones find the prompt in the prefix cache, as vLLM shares it), a tool call when
 * `toolCallFor` picks one (its arguments are the generated text, finish reason `tool_calls`), a JSON
 * answer for `response_format`, and synthetic `logprobs`. Usage counts the prompt once and the
 * completion tokens of every choice; cached tokens are the first choice's.
 */
async function runChat(
  engine: SimulatedEngine,
  parsed: ChatCompletionRequest,
  promptIds: number[],
  lastUserMessage: string | undefined,
  reply: FastifyReply,
): Promise<FastifyReply> {
  engine.validateLength(promptIds.length, parsed.maxTokens);
  const { structured } = parsed;
  const abort = new AbortController();
  const raw = reply.raw;
  raw.on('close', () => {
    if (!raw.writableFinished) abort.abort();
  });
  const ids: ResponseIds = {
    id: `chatcmpl-${randomUUID().replace(/-/g, '')}`,
    created: Math.floor(Date.now() / 1000),
    model: engine.options.model,
  };
  const toolCall = toolCallFor(parsed.messages, structured);
  const structuredReply =
    toolCall?.arguments ?? jsonReplyFor(structured.responseFormat, lastUserMessage ?? '') ?? undefined;
  const choices = Array.from({ length: structured.n }, (_, index) =>
    engine.generate({
      promptTokenIds: promptIds,
      cacheSalt: parsed.cacheSalt,
      maxTokens: parsed.maxTokens,
      seed: index === 0 ? parsed.seed : (parsed.seed ?? 0) + index,
      stop: parsed.stop,
      lastUserMessage,
      ...(structuredReply !== undefined ? { structuredReply } : {}),
      eosTokenId: engine.tokenizer.imEndId,
      signal: abort.signal,
    }),
  );
  const callId = (index: number): string => toolCallId(ids.id, index);
  const logprobsOf = (ev: Extract<EngineEvent, { type: 'token' }>) =>
    structured.logprobs
      ? {
          content: [
            tokenLogprob(ev.tokenId, ev.delta, structured.logprobs.top, (t) => engine.tokenizer.decode(t)),
          ],
        }
      : null;
  const finishOf = (ev: DoneEvent): string =>
    toolCall && ev.finishReason === 'stop' ? 'tool_calls' : ev.finishReason;
  try {
    // Injected errors surface here, before anything is written.
    const firsts = await Promise.all(choices.map((c) => c.next()));
    const first = firsts[0];
    if (
      firsts.some((f) => f.done || f.value.type !== 'first') ||
      first.done ||
      first.value.type !== 'first'
    ) {
      throw new Error('engine produced no first event');
    }
    const headers = engineHeaders(first.value, engine.options.replicaId);
    if (parsed.stream) {
      reply.hijack();
      raw.writeHead(200, {
        ...headers,
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      const send = (choice: Record<string, unknown>): void => {
        const chunk = { ...ids, object: 'chat.completion.chunk', choices: [choice] };
        raw.write(`data: ${JSON.stringify(chunk)}\n\n`);
      };
      const dones = await Promise.all(
        choices.map(async (events, index): Promise<DoneEvent | null> => {
          send({ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null });
          if (toolCall) {
            send({
              index,
              delta: {
                tool_calls: [
                  {
                    index: 0,
                    id: callId(index),
                    type: 'function',
                    function: { name: toolCall.name, arguments: '' },
                  },
                ],
              },
              logprobs: null,
              finish_reason: null,
            });
          }
          for await (const ev of events) {
            if (ev.type === 'token') {
              if (ev.delta === '') continue;
              const delta = toolCall
                ? { tool_calls: [{ index: 0, function: { arguments: ev.delta } }] }
                : { content: ev.delta };
              send({ index, delta, logprobs: logprobsOf(ev), finish_reason: null });
            } else if (ev.type === 'cut') return null;
            else if (ev.type === 'done') {
              send({
                index,
                delta: {},
                logprobs: null,
                finish_reason: finishOf(ev),
                stop_reason: ev.stopReason,
              });
              return ev;
            }
          }
          return null;
        }),
      );
      if (dones.some((d) => d === null)) {
        raw.destroy(); // mid-stream failure: no final chunk, no [DONE]
        return reply;
      }
      if (parsed.includeUsage) {
        const usage = choicesUsage(dones as DoneEvent[]);
        raw.write(
          `data: ${JSON.stringify({ ...ids, object: 'chat.completion.chunk', choices: [], usage })}\n\n`,
        );
      }
      raw.write('data: [DONE]\n\n');
      raw.end();
      return reply;
    }
    const results = await Promise.all(
      choices.map(async (events) => {
        let text = '';
        const logprobs: unknown[] = [];
        for await (const ev of events) {
          if (ev.type === 'token') {
            // As the stream does: a token without text (the end-of-turn token) has no logprobs entry
            // (decoding its neighbours would leave the vocabulary).
            if (ev.delta === '') continue;
            text += ev.delta;
            const lp = logprobsOf(ev);
            if (lp) logprobs.push(...lp.content);
          } else if (ev.type === 'cut') return null;
          else if (ev.type === 'done') return { text, logprobs, done: ev };
        }
        return null;
      }),
    );
    if (results.some((r) => r === null)) {
      reply.hijack();
      raw.destroy(); // the response never arrives: the client sees a dropped connection
      return reply;
    }
    const complete = results as { text: string; logprobs: unknown[]; done: DoneEvent }[];
    headers[`${ENGINE_HEADER}-e2e-ms`] = Math.max(...complete.map((r) => r.done.e2eMs)).toFixed(3);
    void reply.headers(headers);
    return reply.send({
      ...ids,
      object: 'chat.completion',
      choices: complete.map((r, index) => ({
        index,
        message: {
          role: 'assistant',
          content: toolCall ? null : r.text,
          refusal: null,
          tool_calls: toolCall
            ? [{ id: callId(index), type: 'function', function: { name: toolCall.name, arguments: r.text } }]
            : [],
        },
        logprobs: structured.logprobs ? { content: r.logprobs } : null,
        finish_reason: finishOf(r.done),
        stop_reason: r.done.stopReason,
      })),
      usage: choicesUsage(complete.map((r) => r.done)),
      system_fingerprint: 'kvchat-engine-simulator',
    });
  } catch (err) {
    if (isAbort(err)) {
      if (!reply.sent) reply.hijack();
      raw.destroy();
      return reply;
    }
    throw err;
  } finally {
    await Promise.all(choices.map((c) => c.return(undefined)));
  }
}

/** Usage of `n` choices of one prompt: the prompt once, every choice's completion tokens. */
function choicesUsage(dones: readonly DoneEvent[]) {
  const completion = dones.reduce((sum, d) => sum + d.completionTokens, 0);
  return {
    prompt_tokens: dones[0].promptTokens,
    completion_tokens: completion,
    total_tokens: dones[0].promptTokens + completion,
    prompt_tokens_details: { cached_tokens: dones[0].cachedTokens },
  };
}

interface ResponseIds {
  id: string;
  created: number;
  model: string;
}

async function streamEvents(
  kind: GenerationKind,
  ids: ResponseIds,
  includeUsage: boolean,
  headers: Record<string, string>,
  events: AsyncGenerator<EngineEvent, void, undefined>,
  reply: FastifyReply,
): Promise<void> {
  reply.hijack();
  const raw: ServerResponse = reply.raw;
  raw.writeHead(200, {
    ...headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  const send = (payload: unknown): void => {
    raw.write(`data: ${JSON.stringify(payload)}\n\n`);
  };
  if (kind === 'chat') send(chatChunk(ids, { role: 'assistant', content: '' }, null, null));
  for await (const ev of events) {
    if (ev.type === 'token') {
      if (ev.delta === '') continue;
      send(
        kind === 'chat'
          ? chatChunk(ids, { content: ev.delta }, null, null)
          : textChunk(ids, ev.delta, null, null),
      );
    } else if (ev.type === 'cut') {
      raw.destroy(); // mid-stream failure: no final chunk, no [DONE]
      return;
    } else if (ev.type === 'done') {
      send(
        kind === 'chat'
          ? chatChunk(ids, {}, ev.finishReason, ev.stopReason)
          : textChunk(ids, '', ev.finishReason, ev.stopReason),
      );
      if (includeUsage) {
        send({
          id: ids.id,
          object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
          created: ids.created,
          model: ids.model,
          choices: [],
          usage: usageOf(ev),
        });
      }
      raw.write('data: [DONE]\n\n');
      raw.end();
      return;
    }
  }
}

function engineHeaders(
  first: Extract<EngineEvent, { type: 'first' }>,
  replicaId: number,
): Record<string, string> {
  const h = ENGINE_HEADER;
  return {
    [h]: 'simulator',
    [`${h}-replica`]: String(replicaId),
    [`${h}-request-id`]: first.requestId,
    [`${h}-reply-source`]: first.source,
    [`${h}-queue-ms`]: first.timings.queueMs.toFixed(3),
    [`${h}-prefill-wait-ms`]: first.timings.prefillWaitMs.toFixed(3),
    [`${h}-ttft-ms`]: first.timings.ttftMs.toFixed(3),
    [`${h}-model-prefill-ms`]: first.timings.modelPrefillMs.toFixed(3),
    [`${h}-stall-ms`]: first.timings.stallMs.toFixed(3),
    [`${h}-prompt-tokens`]: String(first.cache.promptTokens),
    [`${h}-cached-tokens`]: String(first.cache.cachedTokens),
    [`${h}-gpu-hit-tokens`]: String(first.cache.gpuHitTokens),
    [`${h}-cpu-hit-tokens`]: String(first.cache.cpuHitTokens),
    [`${h}-remote-hit-tokens`]: String(first.cache.remoteHitTokens),
  };
}

type DoneEvent = Extract<EngineEvent, { type: 'done' }>;

function usageOf(ev: DoneEvent) {
  return {
    prompt_tokens: ev.promptTokens,
    completion_tokens: ev.completionTokens,
    total_tokens: ev.promptTokens + ev.completionTokens,
    prompt_tokens_details: { cached_tokens: ev.cachedTokens },
  };
}

function completionBody(kind: GenerationKind, ids: ResponseIds, text: string, ev: DoneEvent) {
  const common = { id: ids.id, created: ids.created, model: ids.model, usage: usageOf(ev) };
  if (kind === 'chat') {
    return {
      ...common,
      object: 'chat.completion',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: text, refusal: null, tool_calls: [] },
          logprobs: null,
          finish_reason: ev.finishReason,
          stop_reason: ev.stopReason,
        },
      ],
      system_fingerprint: 'kvchat-engine-simulator',
    };
  }
  return {
    ...common,
    object: 'text_completion',
    choices: [
      {
        index: 0,
        text,
        logprobs: null,
        finish_reason: ev.finishReason,
        stop_reason: ev.stopReason,
        prompt_logprobs: null,
      },
    ],
  };
}

function chatChunk(
  ids: ResponseIds,
  delta: { role?: string; content?: string },
  finishReason: string | null,
  stopReason: string | null,
) {
  return {
    id: ids.id,
    object: 'chat.completion.chunk',
    created: ids.created,
    model: ids.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason, stop_reason: stopReason }],
  };
}

function textChunk(ids: ResponseIds, text: string, finishReason: string | null, stopReason: string | null) {
  return {
    id: ids.id,
    object: 'text_completion',
    created: ids.created,
    model: ids.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason, stop_reason: stopReason }],
  };
}

/** Little-endian float32 bytes in base64: what the OpenAI SDK decodes by default. */
export function float32Base64(vector: readonly number[]): string {
  const buf = Buffer.alloc(vector.length * 4);
  vector.forEach((v, i) => buf.writeFloatLE(v, i * 4));
  return buf.toString('base64');
}

function checkModel(requested: string | undefined, served: readonly string[]): void {
  if (requested !== undefined && !served.includes(requested)) {
    throw new SimulatorHttpError(404, `The model \`${requested}\` does not exist.`);
  }
}

function parseFaultsPatch(body: unknown): Partial<SimulatorFaults> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new SimulatorHttpError(400, 'the faults patch must be a JSON object');
  }
  const allowed = new Set([
    'errorRate',
    'errorStatus',
    'cutStreamAfterTokens',
    'stallMs',
    'retryAfterSeconds',
  ]);
  const unknown = Object.keys(body).filter((k) => !allowed.has(k));
  if (unknown.length > 0) throw new SimulatorHttpError(400, `unknown fault field(s): ${unknown.join(', ')}`);
  return body as Partial<SimulatorFaults>;
}

function describeError(err: unknown): { status: number; message: string; type?: string } {
  if (err instanceof SimulatorHttpError) return { status: err.status, message: err.message, type: err.type };
  if (err instanceof SimulatorOptionsError) {
    return { status: 400, message: err.message };
  }
  const statusCode = (err as { statusCode?: unknown } | null)?.statusCode;
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    return { status: statusCode, message: (err as Error).message };
  }
  return { status: 500, message: 'Internal error in the kvchat engine simulator' };
}
