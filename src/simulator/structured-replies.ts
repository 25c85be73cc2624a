import { createHash } from 'node:crypto';
import type { ChatMessage } from './chat-template';
import { SimulatorHttpError } from './simulator.errors';

/**
 * Tool calls, JSON answers and log probabilities of the engine simulator: deterministic stand-ins
 * for what a model does with OpenAI's `tools`, `response_format` and `logprobs`, so that clients and
 * kvchat can be tested end to end. Like the text replies, they are synthetic and say nothing about a
 * model's quality.
 */

/** A function tool of the request (`tools[].function`). */
export interface SimTool {
  name: string;
  /** JSON Schema of the arguments. */
  parameters?: Record<string, unknown>;
}

/** `tool_choice`: `auto` (default), `none`, `required`, or one named function. */
export type SimToolChoice = 'auto' | 'none' | 'required' | { name: string };

/** `response_format`. */
export type SimResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; name: string; schema?: Record<string, unknown> };

/** The structured fields of a chat request, parsed. */
export interface StructuredFields {
  tools: SimTool[];
  toolChoice: SimToolChoice;
  responseFormat: SimResponseFormat;
  /** `n`: choices to generate. */
  n: number;
  /** `logprobs` with `top_logprobs` alternatives per token; null when not asked. */
  logprobs: { top: number } | null;
}

type Json = Record<string, unknown>;

const bad = (message: string): SimulatorHttpError => new SimulatorHttpError(400, message);
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses `tools`, `tool_choice`, `response_format`, `n`, `logprobs`, `top_logprobs` (400 naming the field). */
export function parseStructuredFields(o: Json, maxN: number): StructuredFields {
  const tools: SimTool[] = [];
  if (o.tools !== undefined && o.tools !== null) {
    if (!Array.isArray(o.tools)) throw bad('`tools` must be a list');
    o.tools.forEach((t, i) => {
      const fn = isObject(t) ? t.function : undefined;
      if (!isObject(t) || t.type !== 'function' || !isObject(fn) || typeof fn.name !== 'string') {
        throw bad(`tools[${i}] must be {type: 'function', function: {name, parameters}}`);
      }
      tools.push({ name: fn.name, ...(isObject(fn.parameters) ? { parameters: fn.parameters } : {}) });
    });
  }
  let toolChoice: SimToolChoice = 'auto';
  const tc = o.tool_choice;
  if (tc === 'auto' || tc === 'none' || tc === 'required') toolChoice = tc;
  else if (isObject(tc) && isObject(tc.function) && typeof tc.function.name === 'string') {
    const name = tc.function.name;
    if (!tools.some((t) => t.name === name))
      throw bad(`tool_choice names \`${name}\`, which is not in tools`);
    toolChoice = { name };
  } else if (tc !== undefined && tc !== null) {
    throw bad("`tool_choice` must be 'auto', 'none', 'required' or {type: 'function', function: {name}}");
  }
  if (toolChoice !== 'auto' && toolChoice !== 'none' && tools.length === 0) {
    throw bad('`tool_choice` requires `tools`');
  }

  let responseFormat: SimResponseFormat = { type: 'text' };
  const rf = o.response_format;
  if (isObject(rf)) {
    if (rf.type === 'json_object') responseFormat = { type: 'json_object' };
    else if (rf.type === 'json_schema') {
      const js = rf.json_schema;
      if (!isObject(js) || typeof js.name !== 'string')
        throw bad('`response_format.json_schema.name` is required');
      responseFormat = {
        type: 'json_schema',
        name: js.name,
        ...(isObject(js.schema) ? { schema: js.schema } : {}),
      };
    } else if (rf.type !== 'text')
      throw bad("`response_format.type` must be 'text', 'json_object' or 'json_schema'");
  } else if (rf !== undefined && rf !== null) throw bad('`response_format` must be an object');

  const n = o.n ?? 1;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > maxN) {
    throw bad(`n must be an integer from 1 to ${maxN}`);
  }
  let logprobs: StructuredFields['logprobs'] = null;
  if (o.logprobs === true) {
    const top = o.top_logprobs ?? 0;
    if (typeof top !== 'number' || !Number.isInteger(top) || top < 0 || top > 20) {
      throw bad('top_logprobs must be an integer from 0 to 20');
    }
    logprobs = { top };
  } else if (o.top_logprobs !== undefined && o.top_logprobs !== null) {
    throw bad('top_logprobs requires logprobs: true');
  }
  return { tools, toolChoice, responseFormat, n, logprobs };
}

/** A tool call the simulator answers with: the function and its arguments (JSON text). */
export interface SimToolCall {
  name: string;
  arguments: string;
}

/**
 * Whether to answer with a tool call, and which: only when the last message is the user's (after a
 * tool's result the simulator answers text), tools are given and `tool_choice` is not `none`; then
 * the named function (`tool_choice: {function}`), else the first tool whose name the user message
 * mentions (`get_weather` or `get weather`, any case), else the first tool when `tool_choice` is
 * `required`. Arguments fill the tool's JSON Schema from the user message (see argumentsFor).
 */
export function toolCallFor(
  messages: readonly ChatMessage[],
  fields: Pick<StructuredFields, 'tools' | 'toolChoice'>,
): SimToolCall | null {
  const last = messages[messages.length - 1];
  if (!last || last.role !== 'user' || fields.tools.length === 0 || fields.toolChoice === 'none') return null;
  const text = last.content.toLowerCase();
  const choice = fields.toolChoice;
  const tool =
    typeof choice === 'object'
      ? fields.tools.find((t) => t.name === choice.name)
      : (fields.tools.find(
          (t) =>
            text.includes(t.name.toLowerCase()) || text.includes(t.name.toLowerCase().replace(/[_-]+/g, ' ')),
        ) ?? (choice === 'required' ? fields.tools[0] : undefined));
  if (!tool) return null;
  return { name: tool.name, arguments: JSON.stringify(valueFor(tool.parameters ?? {}, last.content)) };
}

/** The JSON answer for `json_object` / `json_schema` (null for `text`). */
export function jsonReplyFor(format: SimResponseFormat, lastUserMessage: string): string | null {
  if (format.type === 'text') return null;
  if (format.type === 'json_schema' && format.schema)
    return JSON.stringify(valueFor(format.schema, lastUserMessage));
  return JSON.stringify({ answer: 'A synthetic answer from the kvchat engine simulator.' });
}

/**
 * A value matching a JSON Schema, filled deterministically from `text`: strings take the last
 * capitalised word of the text (a place or a name), else its last word, or the first `enum` value;
 * numbers the first number in the text, else 1; booleans true; objects fill their required
 * properties (all properties when none is required); arrays hold one item.
 */
export function valueFor(schema: Record<string, unknown>, text: string): unknown {
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0] as unknown;
  const type: unknown = Array.isArray(schema.type) ? (schema.type as unknown[])[0] : schema.type;
  switch (type) {
    case 'string': {
      const words = text.match(/[\p{L}\p{N}][\p{L}\p{N}'-]*/gu) ?? [];
      const capitalised = words.slice(1).filter((w) => /^\p{Lu}/u.test(w));
      return capitalised[capitalised.length - 1] ?? words[words.length - 1] ?? 'kvchat';
    }
    case 'number':
    case 'integer': {
      const match = /-?\d+(?:\.\d+)?/.exec(text);
      const n = match ? Number(match[0]) : 1;
      return type === 'integer' ? Math.trunc(n) : n;
    }
    case 'boolean':
      return true;
    case 'array':
      return [valueFor(isObject(schema.items) ? schema.items : { type: 'string' }, text)];
    case 'null':
      return null;
    default: {
      const properties = isObject(schema.properties) ? schema.properties : {};
      const required = Array.isArray(schema.required) ? schema.required.map(String) : [];
      const keys = required.length > 0 ? required : Object.keys(properties);
      return Object.fromEntries(
        keys.map((k) => [k, valueFor(isObject(properties[k]) ? properties[k] : { type: 'string' }, text)]),
      );
    }
  }
}

/** A deterministic tool-call id for a request's choice. */
export function toolCallId(requestId: string, choice: number): string {
  return `call_${createHash('sha256').update(`${requestId}:${choice}`).digest('hex').slice(0, 24)}`;
}

/** OpenAI `logprobs.content[]` entry of one output token. */
export interface SimTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

/**
 * A synthetic log probability for an output token (natural log, in (-1, 0]) and `top` alternatives
 * (neighbouring token ids, each less likely), derived from the token id: deterministic, not a model's.
 */
export function tokenLogprob(
  tokenId: number,
  delta: string,
  top: number,
  decode: (ids: number[]) => string,
): SimTokenLogprob {
  const logprob = -((tokenId % 997) / 1000);
  const entry = (token: string, lp: number) => ({
    token,
    logprob: lp,
    bytes: [...Buffer.from(token, 'utf8')],
  });
  const alternatives = Array.from({ length: top }, (_, j) =>
    j === 0 ? entry(delta, logprob) : entry(decode([tokenId + j]), logprob - j),
  );
  return { ...entry(delta, logprob), top_logprobs: alternatives };
}
