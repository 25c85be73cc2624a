import { type ChatMessage } from './chat-template';
import { SimulatorHttpError } from './simulator.errors';
import { parseStructuredFields, type StructuredFields } from './structured-replies';

/**
 * Parsing of the OpenAI / vLLM request bodies the simulator accepts. Only the fields the engine
 * uses are read; the rest are accepted and ignored, as vLLM ignores unknown sampling fields.
 * Every violation is a 400 `SimulatorHttpError` in vLLM's style.
 */

/** Sampling fields shared by chat and text completions. */
export interface SamplingFields {
  model?: string;
  stream: boolean;
  /** `stream_options.include_usage`: a final chunk with `usage` and `choices: []`. */
  includeUsage: boolean;
  /** `max_completion_tokens` ?? `max_tokens`. */
  maxTokens?: number;
  temperature?: number;
  seed?: number;
  stop?: string[];
  /** vLLM's `cache_salt`. */
  cacheSalt?: string;
}

export interface ChatCompletionRequest extends SamplingFields {
  messages: ChatMessage[];
  /** `tools`, `tool_choice`, `response_format`, `n`, `logprobs` (see structured-replies.ts). */
  structured: StructuredFields;
}

/** The largest `n` the simulator generates. */
export const MAX_CHOICES = 16;

export interface CompletionRequest extends SamplingFields {
  /** Text, or token ids as vLLM accepts. */
  prompt: string | number[];
}

export interface EmbeddingRequest {
  model?: string;
  /** Each input, as text or token ids. */
  inputs: (string | number[])[];
  encodingFormat: 'float' | 'base64';
  dimensions?: number;
}

export type TokenizeRequest =
  | { kind: 'prompt'; model?: string; prompt: string }
  | { kind: 'chat'; model?: string; messages: ChatMessage[]; addGenerationPrompt: boolean };

export interface DetokenizeRequest {
  model?: string;
  tokens: number[];
}

type Json = Record<string, unknown>;

export function parseChatCompletionRequest(body: unknown): ChatCompletionRequest {
  const o = asObject(body);
  return {
    ...parseSampling(o),
    messages: parseMessages(o.messages),
    structured: parseStructuredFields(o, MAX_CHOICES),
  };
}

export function parseCompletionRequest(body: unknown): CompletionRequest {
  const o = asObject(body);
  const p = o.prompt;
  let prompt: string | number[];
  if (typeof p === 'string') prompt = p;
  else if (Array.isArray(p) && p.length === 1 && typeof p[0] === 'string') prompt = p[0];
  else if (isTokenArray(p)) prompt = p;
  else if (Array.isArray(p) && p.length === 1 && isTokenArray(p[0])) prompt = p[0];
  else throw bad('`prompt` must be a string or a list of token ids (batched prompts are not simulated)');
  const n = optInteger(o, 'n', 1);
  if (n !== undefined && n !== 1) throw bad('n > 1 is not supported by the engine simulator for completions');
  return { ...parseSampling(o), prompt };
}

export function parseEmbeddingRequest(body: unknown): EmbeddingRequest {
  const o = asObject(body);
  const input = o.input;
  let inputs: (string | number[])[];
  if (typeof input === 'string') inputs = [input];
  else if (isTokenArray(input) && input.length > 0) inputs = [input];
  else if (
    Array.isArray(input) &&
    input.length > 0 &&
    input.every((x) => typeof x === 'string' || isTokenArray(x))
  ) {
    inputs = input;
  } else throw bad('`input` must be a string, a list of strings, or token ids');
  const format = o.encoding_format ?? 'float';
  if (format !== 'float' && format !== 'base64') throw bad("`encoding_format` must be 'float' or 'base64'");
  return {
    model: optString(o, 'model'),
    inputs,
    encodingFormat: format,
    dimensions: optInteger(o, 'dimensions', 1),
  };
}

export function parseTokenizeRequest(body: unknown): TokenizeRequest {
  const o = asObject(body);
  const model = optString(o, 'model');
  if (o.messages !== undefined) {
    return {
      kind: 'chat',
      model,
      messages: parseMessages(o.messages),
      addGenerationPrompt: optBoolean(o, 'add_generation_prompt') ?? true,
    };
  }
  if (typeof o.prompt !== 'string') throw bad('either `prompt` (string) or `messages` is required');
  return { kind: 'prompt', model, prompt: o.prompt };
}

export function parseDetokenizeRequest(body: unknown): DetokenizeRequest {
  const o = asObject(body);
  if (!isTokenArray(o.tokens)) throw bad('`tokens` must be a list of token ids');
  return { model: optString(o, 'model'), tokens: o.tokens };
}

function parseSampling(o: Json): SamplingFields {
  const stream = optBoolean(o, 'stream') ?? false;
  const streamOptions = o.stream_options;
  if (streamOptions !== undefined && streamOptions !== null && !stream) {
    throw bad('Stream options can only be defined when `stream=True`.');
  }
  const includeUsage =
    typeof streamOptions === 'object' && streamOptions !== null
      ? (streamOptions as Json).include_usage === true
      : false;
  const maxTokens = optInteger(o, 'max_completion_tokens', 1) ?? optInteger(o, 'max_tokens', 1);
  const temperature = optNumber(o, 'temperature');
  if (temperature !== undefined && temperature < 0)
    throw bad(`temperature must be non-negative, got ${temperature}.`);
  let cacheSalt: string | undefined;
  if (o.cache_salt !== undefined && o.cache_salt !== null) {
    if (typeof o.cache_salt !== 'string' || o.cache_salt === '') {
      throw bad("Parameter 'cache_salt' must be a non-empty string if provided.");
    }
    cacheSalt = o.cache_salt;
  }
  return {
    model: optString(o, 'model'),
    stream,
    includeUsage,
    maxTokens,
    temperature,
    seed: optInteger(o, 'seed'),
    stop: parseStop(o.stop),
    cacheSalt,
  };
}

function parseMessages(value: unknown): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0) throw bad('`messages` must be a non-empty list');
  return value.map((m, i) => {
    if (typeof m !== 'object' || m === null) throw bad(`messages[${i}] must be an object`);
    const { role, content, tool_calls: toolCalls } = m as Json;
    if (typeof role !== 'string' || role === '') throw bad(`messages[${i}].role must be a string`);
    const text = parseContent(content, i);
    if (role === 'tool' && typeof (m as Json).tool_call_id !== 'string') {
      throw bad(`messages[${i}].tool_call_id is required on a tool message`);
    }
    if (toolCalls === undefined || toolCalls === null) return { role, content: text };
    if (!Array.isArray(toolCalls)) throw bad(`messages[${i}].tool_calls must be a list`);
    // The fixed template renders an assistant's tool calls as JSON after its text (ChatML has no slot).
    const calls = toolCalls.map((c, j) => {
      const fn = (c as Json | null)?.function as Json | undefined;
      if (typeof fn?.name !== 'string' || typeof fn.arguments !== 'string') {
        throw bad(`messages[${i}].tool_calls[${j}].function must have a name and arguments (JSON text)`);
      }
      return { name: fn.name, arguments: fn.arguments };
    });
    return { role, content: `${text}${text ? '\n' : ''}${JSON.stringify({ tool_calls: calls })}` };
  });
}

function parseContent(content: unknown, i: number): string {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part, j) => {
        const p = part as Json;
        if (typeof part !== 'object' || part === null || p.type !== 'text' || typeof p.text !== 'string') {
          throw bad(`messages[${i}].content[${j}]: only text parts are supported by the engine simulator`);
        }
        return p.text;
      })
      .join('\n');
  }
  throw bad(`messages[${i}].content must be a string or a list of text parts`);
}

function parseStop(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((s) => typeof s === 'string')) return value;
  throw bad('`stop` must be a string or a list of strings');
}

function asObject(body: unknown): Json {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw bad('the request body must be a JSON object');
  }
  return body as Json;
}

function isTokenArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((t) => Number.isInteger(t) && (t as number) >= 0);
}

function optString(o: Json, key: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw bad(`\`${key}\` must be a string`);
  return v;
}

function optBoolean(o: Json, key: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw bad(`\`${key}\` must be a boolean`);
  return v;
}

function optNumber(o: Json, key: string): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`\`${key}\` must be a number`);
  return v;
}

function optInteger(o: Json, key: string, min?: number): number | undefined {
  const v = optNumber(o, key);
  if (v === undefined) return undefined;
  if (!Number.isInteger(v)) throw bad(`\`${key}\` must be an integer`);
  if (min !== undefined && v < min) throw bad(`${key} must be at least ${min}, got ${v}.`);
  return v;
}

function bad(message: string): SimulatorHttpError {
  return new SimulatorHttpError(400, message);
}
