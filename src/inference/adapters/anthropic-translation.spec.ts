import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type Anthropic from '@anthropic-ai/sdk';
import type OpenAI from 'openai';
import { fromAnthropicMessage, fromAnthropicStream, toAnthropicRequest } from './anthropic-translation';

/** Recorded request/response pairs in the shapes of each provider's API reference (see each file's `source`). */
const fixture = <T>(name: string): T =>
  JSON.parse(readFileSync(join(__dirname, '../../../test/fixtures/providers', name), 'utf8')) as T;

async function* replay<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield await Promise.resolve(item);
}

async function collect(events: Anthropic.RawMessageStreamEvent[]): Promise<OpenAI.ChatCompletionChunk[]> {
  const out: OpenAI.ChatCompletionChunk[] = [];
  for await (const c of fromAnthropicStream(replay(events), 1700000000)) out.push(c);
  return out;
}

interface StreamFixture {
  events: Anthropic.RawMessageStreamEvent[];
  chunks: { delta: unknown; finish_reason: string | null }[];
  usage: unknown;
}

describe('Chat Completions <-> Anthropic Messages (contract fixtures)', () => {
  it('should map a Chat Completions request with tools and a tool round-trip onto the Messages request, with cache breakpoints', () => {
    const pair = fixture<{ chat: OpenAI.ChatCompletionCreateParams; anthropic: unknown }>(
      'chat-to-anthropic-request.json',
    );

    const sut = toAnthropicRequest(pair.chat, { cacheBreakpoints: true });

    expect(sut).toEqual(pair.anthropic);
  });

  it('should not add cache_control when breakpoints are off, and default max_tokens', () => {
    const sut = toAnthropicRequest(
      {
        model: 'claude-sonnet-4-5',
        messages: [
          { role: 'system', content: 'S' },
          { role: 'user', content: 'Q' },
        ],
      },
      { cacheBreakpoints: false },
    );

    expect(JSON.stringify(sut)).not.toContain('cache_control');
    expect(sut.max_tokens).toBe(4096);
    expect(sut.system).toEqual([{ type: 'text', text: 'S' }]);
  });

  it('should put at most 4 breakpoints: stable prefix end, last history message, new message', () => {
    const sut = toAnthropicRequest(
      {
        model: 'm',
        messages: [
          { role: 'system', content: 'stable prefix' },
          { role: 'system', content: 'rolling summary' },
          { role: 'user', content: 'q1' },
          { role: 'assistant', content: 'a1' },
          { role: 'user', content: 'q2' },
        ],
      },
      { cacheBreakpoints: true },
    );
    const marked = JSON.stringify(sut).match(/cache_control/g) ?? [];

    expect(marked).toHaveLength(3);
    expect(sut.system).toEqual([
      { type: 'text', text: 'stable prefix' },
      { type: 'text', text: 'rolling summary', cache_control: { type: 'ephemeral' } },
    ]);
    expect(sut.messages[1]).toEqual({
      role: 'assistant',
      content: [{ type: 'text', text: 'a1', cache_control: { type: 'ephemeral' } }],
    });
  });

  it.each(['anthropic-stream-text.json', 'anthropic-stream-tool-use.json'])(
    'should translate the event stream of %s into Chat Completions chunks and usage',
    async (name) => {
      const { events, chunks, usage } = fixture<StreamFixture>(name);

      const sut = await collect(events);
      const start = events[0] as Anthropic.RawMessageStartEvent;

      const body = sut.slice(0, -1);
      expect(
        body.map((c) => ({ delta: c.choices[0].delta, finish_reason: c.choices[0].finish_reason })),
      ).toEqual(chunks);
      expect(body.every((c) => c.object === 'chat.completion.chunk' && c.id === start.message.id)).toBe(true);
      expect(sut[sut.length - 1]).toMatchObject({ choices: [], usage });
    },
  );

  it('should translate a tool-use message into a chat.completion with tool_calls and cache usage', () => {
    const { message, completion, created } = fixture<{
      message: Anthropic.Message;
      completion: OpenAI.ChatCompletion;
      created: number;
    }>('anthropic-message-tool-use.json');

    expect(fromAnthropicMessage(message, created)).toEqual(completion);
  });
});
