import { SimulatorHttpError } from './simulator.errors';
import {
  jsonReplyFor,
  parseStructuredFields,
  tokenLogprob,
  toolCallFor,
  valueFor,
} from './structured-replies';

const weather = {
  name: 'get_weather',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string' }, days: { type: 'integer' }, unit: { enum: ['c', 'f'] } },
    required: ['city', 'days', 'unit'],
  },
};

describe('structured replies of the engine simulator', () => {
  it('should call the tool the user message names, with arguments filled from it', () => {
    const call = toolCallFor([{ role: 'user', content: 'Use get weather for Lyon over 3 days' }], {
      tools: [{ name: 'get_time' }, weather],
      toolChoice: 'auto',
    });
    expect(call?.name).toBe('get_weather');
    expect(JSON.parse(call?.arguments ?? '')).toEqual({ city: 'Lyon', days: 3, unit: 'c' });
  });

  it('should answer text after a tool result, with tool_choice none, and when no tool is named', () => {
    const tools = { tools: [weather], toolChoice: 'auto' as const };
    expect(toolCallFor([{ role: 'tool', content: '{"t": 3}' }], tools)).toBeNull();
    expect(
      toolCallFor([{ role: 'user', content: 'get_weather Paris' }], { ...tools, toolChoice: 'none' }),
    ).toBeNull();
    expect(toolCallFor([{ role: 'user', content: 'Hello' }], tools)).toBeNull();
    expect(
      toolCallFor([{ role: 'user', content: 'Hello' }], { ...tools, toolChoice: 'required' })?.name,
    ).toBe('get_weather');
  });

  it('should fill a JSON schema deterministically', () => {
    const schema = {
      type: 'object',
      properties: { tags: { type: 'array', items: { type: 'string' } }, ok: { type: 'boolean' } },
    };
    expect(valueFor(schema, 'tag it Rust')).toEqual({ tags: ['Rust'], ok: true });
    expect(jsonReplyFor({ type: 'text' }, 'x')).toBeNull();
    expect(JSON.parse(jsonReplyFor({ type: 'json_object' }, 'x') ?? '')).toHaveProperty('answer');
  });

  it('should reject what OpenAI rejects, naming the field', () => {
    const parse = (o: Record<string, unknown>) => () => parseStructuredFields(o, 16);
    expect(parse({ n: 17 })).toThrow(SimulatorHttpError);
    expect(parse({ n: 17 })).toThrow(/n must be/);
    expect(parse({ top_logprobs: 2 })).toThrow(/top_logprobs requires logprobs/);
    expect(parse({ tool_choice: 'required' })).toThrow(/requires `tools`/);
    expect(
      parse({
        tools: [{ type: 'function', function: { name: 'a' } }],
        tool_choice: { type: 'function', function: { name: 'b' } },
      }),
    ).toThrow(/not in tools/);
    expect(parseStructuredFields({ n: 3, logprobs: true, top_logprobs: 2 }, 16)).toMatchObject({
      n: 3,
      logprobs: { top: 2 },
    });
  });

  it('should give a token a log probability at most 0 and less likely alternatives', () => {
    const lp = tokenLogprob(1234, ' cache', 3, (ids) => `#${ids[0]}`);
    expect(lp.logprob).toBeLessThanOrEqual(0);
    expect(lp.top_logprobs.map((t) => t.token)).toEqual([' cache', '#1235', '#1236']);
    expect(lp.top_logprobs[1].logprob).toBeLessThan(lp.logprob);
    expect(lp.bytes).toEqual([...Buffer.from(' cache')]);
  });
});
