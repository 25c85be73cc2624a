import { ANTHROPIC_DROPPED_FIELDS } from './anthropic.adapter';
import { toAnthropicRequest } from './anthropic-translation';
import { openAiChatBody } from './vllm.adapter';

const tool = {
  type: 'function',
  function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
};

describe('openAiChatBody', () => {
  it("should forward the client's other fields and let kvchat's own fields win", () => {
    const body = openAiChatBody({
      model: 'upstream-model',
      messages: [{ role: 'user', content: 'hi' }],
      maxTokens: 16,
      extra: { tools: [tool], n: 2, logprobs: true, vendor_flag: 'x', model: 'client-model', stream: false },
    });

    expect(body).toMatchObject({
      model: 'upstream-model',
      stream: true,
      max_tokens: 16,
      tools: [tool],
      n: 2,
      logprobs: true,
      vendor_flag: 'x',
    });
  });

  it('should send tool messages and assistant tool calls as the OpenAI wire has them', () => {
    const call = {
      id: 'call_1',
      type: 'function' as const,
      function: { name: 'get_weather', arguments: '{}' },
    };

    const body = openAiChatBody({
      model: 'm',
      messages: [
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: '', tool_calls: [call] },
        { role: 'tool', content: '{"c":1}', tool_call_id: 'call_1' },
      ],
      maxTokens: 8,
    });

    expect(body.messages).toEqual([
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: null, tool_calls: [call] },
      { role: 'tool', content: '{"c":1}', tool_call_id: 'call_1' },
    ]);
  });
});

describe('Anthropic translation of the request surface', () => {
  it('should translate tools and tool_choice and drop the fields Anthropic lacks', () => {
    const dropped = Object.fromEntries(ANTHROPIC_DROPPED_FIELDS.map((f) => [f, f === 'logprobs' ? true : 1]));

    const body = toAnthropicRequest(
      openAiChatBody({
        model: 'claude',
        messages: [{ role: 'user', content: 'weather in Oslo?' }],
        maxTokens: 8,
        extra: { ...dropped, tools: [tool], tool_choice: 'required', user: 'u-1' },
      }),
      { cacheBreakpoints: false },
    );

    expect(body.tools).toEqual([{ name: 'get_weather', input_schema: tool.function.parameters }]);
    expect(body.tool_choice).toEqual({ type: 'any' });
    expect(body.metadata).toEqual({ user_id: 'u-1' });
    for (const field of ANTHROPIC_DROPPED_FIELDS) {
      if (field === 'metadata') continue; // Anthropic's own metadata carries `user`
      expect(body).not.toHaveProperty(field);
    }
  });
});
