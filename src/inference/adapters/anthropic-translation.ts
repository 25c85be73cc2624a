import type Anthropic from '@anthropic-ai/sdk';
import type OpenAI from 'openai';

/**
 * Chat Completions <-> Anthropic Messages, as pure functions (the contract specs pin them on the pairs in
 * test/fixtures/providers/). References: https://docs.anthropic.com/en/api/messages,
 * https://docs.anthropic.com/en/api/messages-streaming, https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching
 * and https://platform.openai.com/docs/api-reference/chat.
 */

type ChatParams = OpenAI.ChatCompletionCreateParams;
type ChatMessage = OpenAI.ChatCompletionMessageParam;
type Block = Anthropic.ContentBlockParam;
type Msg = { role: 'user' | 'assistant'; content: Block[] };

/** Anthropic requires `max_tokens`; used when the Chat Completions request sets none. */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 4096;
/** Anthropic allows at most 4 `cache_control` breakpoints per request. */
const MAX_BREAKPOINTS = 4;
const EPHEMERAL = { type: 'ephemeral' } as const;

function textOf(content: ChatMessage['content']): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  return content.map((p) => ('text' in p ? p.text : '')).join('');
}

/** Chat Completions `stop_reason` of an Anthropic `stop_reason`. */
export function finishReasonOf(stop: string | null | undefined): string {
  switch (stop) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    case 'end_turn':
    case 'stop_sequence':
    case 'pause_turn':
    case null:
    case undefined:
    default:
      return 'stop';
  }
}

/**
 * The Messages request for a Chat Completions request.
 * - `system`/`developer` messages become `system` text blocks (in order); `tool` messages become
 *   `tool_result` blocks of a user turn; assistant `tool_calls` become `tool_use` blocks.
 * - `tools` -> `{name, description, input_schema}`; `tool_choice` auto/required/none/{function} ->
 *   auto/any/none/{tool}; `parallel_tool_calls: false` -> `disable_parallel_tool_use`.
 * - `stop` -> `stop_sequences`; `max_completion_tokens`/`max_tokens` -> `max_tokens` (default 4096);
 *   `temperature`, `top_p`, `user` -> `metadata.user_id`. Fields Anthropic lacks (`seed`, penalties, `n`,
 *   `logprobs`, `response_format`) are dropped.
 * - `cacheBreakpoints`: prompt caching from kvchat's layout — `cache_control` on the last system block (the
 *   end of the stable prefix), on the last history message, and on the final message (so the next turn,
 *   whose history ends there, reads it); at most 4.
 */
export function toAnthropicRequest(
  params: ChatParams,
  options: { cacheBreakpoints: boolean },
): Anthropic.MessageCreateParams {
  const system: Anthropic.TextBlockParam[] = [];
  const messages: Msg[] = [];
  const push = (role: Msg['role'], blocks: Block[]): void => {
    const last = messages[messages.length - 1];
    // Consecutive turns of one role are one Anthropic turn (tool results after several tool calls).
    if (last && last.role === role) last.content.push(...blocks);
    else messages.push({ role, content: blocks });
  };
  for (const m of params.messages) {
    switch (m.role) {
      case 'system':
      case 'developer':
        system.push({ type: 'text', text: textOf(m.content) });
        break;
      case 'user':
        push('user', [{ type: 'text', text: textOf(m.content) }]);
        break;
      case 'assistant': {
        const blocks: Block[] = [];
        const text = textOf(m.content ?? null);
        if (text) blocks.push({ type: 'text', text });
        for (const call of m.tool_calls ?? []) {
          if (call.type !== 'function') continue;
          blocks.push({
            type: 'tool_use',
            id: call.id,
            name: call.function.name,
            input: parseArguments(call.function.arguments),
          });
        }
        push('assistant', blocks.length > 0 ? blocks : [{ type: 'text', text: '' }]);
        break;
      }
      case 'tool':
        push('user', [{ type: 'tool_result', tool_use_id: m.tool_call_id, content: textOf(m.content) }]);
        break;
      case 'function':
        push('user', [{ type: 'text', text: m.content ?? '' }]);
        break;
    }
  }
  if (options.cacheBreakpoints) {
    let left = MAX_BREAKPOINTS;
    const mark = (block: Block | undefined): void => {
      if (!block || left === 0 || 'cache_control' in block) return;
      if (block.type === 'text' && block.text === '') return; // empty text blocks cannot be cached
      (block as { cache_control?: unknown }).cache_control = EPHEMERAL;
      left--;
    };
    mark(system[system.length - 1]);
    const lastOf = (m: Msg | undefined): Block | undefined => m?.content[m.content.length - 1];
    mark(lastOf(messages[messages.length - 2])); // the last history message
    mark(lastOf(messages[messages.length - 1])); // the new message: next turn's history ends here
  }
  const out: Anthropic.MessageCreateParams = {
    model: params.model,
    max_tokens: params.max_completion_tokens ?? params.max_tokens ?? ANTHROPIC_DEFAULT_MAX_TOKENS,
    messages: messages as Anthropic.MessageParam[],
    ...(system.length > 0 ? { system } : {}),
    ...(params.stream ? { stream: true } : {}),
    ...(typeof params.temperature === 'number' ? { temperature: Math.min(1, params.temperature) } : {}),
    ...(typeof params.top_p === 'number' ? { top_p: params.top_p } : {}),
    ...(params.stop ? { stop_sequences: typeof params.stop === 'string' ? [params.stop] : params.stop } : {}),
    ...(params.user ? { metadata: { user_id: params.user } } : {}),
  };
  if (params.tools && params.tools.length > 0) {
    out.tools = params.tools
      .filter((t): t is OpenAI.ChatCompletionFunctionTool => t.type === 'function')
      .map((t) => ({
        name: t.function.name,
        ...(t.function.description ? { description: t.function.description } : {}),
        input_schema: (t.function.parameters ?? {
          type: 'object',
          properties: {},
        }) as Anthropic.Tool.InputSchema,
      }));
  }
  const choice = params.tool_choice;
  const parallelOff = params.parallel_tool_calls === false ? { disable_parallel_tool_use: true } : {};
  if (choice === 'auto') out.tool_choice = { type: 'auto', ...parallelOff };
  else if (choice === 'required') out.tool_choice = { type: 'any', ...parallelOff };
  else if (choice === 'none') out.tool_choice = { type: 'none' };
  else if (choice && typeof choice === 'object' && choice.type === 'function')
    out.tool_choice = { type: 'tool', name: choice.function.name, ...parallelOff };
  else if (params.parallel_tool_calls === false && out.tools)
    out.tool_choice = { type: 'auto', ...parallelOff };
  return out;
}

function parseArguments(json: string): Record<string, unknown> {
  try {
    const v = JSON.parse(json) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/**
 * Chat Completions `usage` of Anthropic usage: `prompt_tokens` counts every input token (uncached +
 * cache read + cache write, since Anthropic's `input_tokens` excludes the cached ones), `cached_tokens` =
 * `cache_read_input_tokens`. The cache write is kept as kvchat's `cache_creation_input_tokens` extension.
 */
export function usageOf(u: {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
}): OpenAI.CompletionUsage & { cache_creation_input_tokens: number } {
  const read = u.cache_read_input_tokens ?? 0;
  const write = u.cache_creation_input_tokens ?? 0;
  const prompt = (u.input_tokens ?? 0) + read + write;
  const completion = u.output_tokens ?? 0;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: read },
    cache_creation_input_tokens: write,
  };
}

/** A Chat Completions `chat.completion` of an Anthropic `message` (non-streamed). */
export function fromAnthropicMessage(message: Anthropic.Message, created: number): OpenAI.ChatCompletion {
  let text = '';
  const toolCalls: OpenAI.ChatCompletionMessageFunctionToolCall[] = [];
  for (const block of message.content) {
    if (block.type === 'text') text += block.text;
    else if (block.type === 'tool_use') {
      toolCalls.push({
        id: block.id,
        type: 'function',
        function: { name: block.name, arguments: JSON.stringify(block.input) },
      });
    }
  }
  return {
    id: message.id,
    object: 'chat.completion',
    created,
    model: message.model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: text.length > 0 ? text : null,
          refusal: null,
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
        },
        logprobs: null,
        finish_reason: finishReasonOf(message.stop_reason) as OpenAI.ChatCompletion.Choice['finish_reason'],
      },
    ],
    usage: usageOf(message.usage),
  };
}

/**
 * Chat Completions chunks of an Anthropic event stream: `message_start` -> the role chunk; text deltas ->
 * content chunks; a `tool_use` block -> a tool call chunk (id, name) and its `input_json_delta`s ->
 * argument chunks; `message_delta` -> the finish chunk; the usage chunk (`stream_options.include_usage`)
 * last, adding `message_start`'s input and cache counts to `message_delta`'s output count.
 */
export async function* fromAnthropicStream(
  events: AsyncIterable<Anthropic.RawMessageStreamEvent>,
  created: number,
): AsyncGenerator<OpenAI.ChatCompletionChunk> {
  let id = '';
  let model = '';
  let usage: Parameters<typeof usageOf>[0] = {};
  const toolIndex = new Map<number, number>(); // content block index -> tool call index
  const chunk = (
    delta: OpenAI.ChatCompletionChunk.Choice.Delta,
    finish: OpenAI.ChatCompletionChunk.Choice['finish_reason'] = null,
  ): OpenAI.ChatCompletionChunk => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  });
  for await (const event of events) {
    switch (event.type) {
      case 'message_start':
        id = event.message.id;
        model = event.message.model;
        usage = { ...event.message.usage };
        yield chunk({ role: 'assistant', content: '' });
        break;
      case 'content_block_start':
        if (event.content_block.type === 'tool_use') {
          const index = toolIndex.size;
          toolIndex.set(event.index, index);
          yield chunk({
            tool_calls: [
              {
                index,
                id: event.content_block.id,
                type: 'function',
                function: { name: event.content_block.name, arguments: '' },
              },
            ],
          });
        }
        break;
      case 'content_block_delta':
        if (event.delta.type === 'text_delta') yield chunk({ content: event.delta.text });
        else if (event.delta.type === 'input_json_delta') {
          yield chunk({
            tool_calls: [
              { index: toolIndex.get(event.index) ?? 0, function: { arguments: event.delta.partial_json } },
            ],
          });
        }
        break;
      case 'message_delta': {
        const u = event.usage;
        usage = {
          ...usage,
          output_tokens: u.output_tokens,
          ...(u.input_tokens !== null && u.input_tokens !== undefined
            ? { input_tokens: u.input_tokens }
            : {}),
          ...(u.cache_read_input_tokens !== null && u.cache_read_input_tokens !== undefined
            ? { cache_read_input_tokens: u.cache_read_input_tokens }
            : {}),
          ...(u.cache_creation_input_tokens !== null && u.cache_creation_input_tokens !== undefined
            ? { cache_creation_input_tokens: u.cache_creation_input_tokens }
            : {}),
        };
        yield chunk(
          {},
          finishReasonOf(event.delta.stop_reason) as OpenAI.ChatCompletionChunk.Choice['finish_reason'],
        );
        break;
      }
      case 'message_stop':
        yield { ...chunk({}), choices: [], usage: usageOf(usage) };
        break;
      case 'content_block_stop':
        break;
    }
  }
}
