import Anthropic, { BadRequestError, RateLimitError } from '@anthropic-ai/sdk';
import { AnthropicPromptCache, parseMessagesRequest } from './anthropic-messages';
import { type RunningSimulator, startEngineSimulator } from './simulator.server';

const block = (text: string, cached = false) => ({ role: 'user' as const, text, cached });

describe('AnthropicPromptCache', () => {
  const build = (minTokens = 100, ttlMs = 300_000) => {
    let now = 1_000_000;
    const sut = new AnthropicPromptCache({ minTokens, ttlMs }, () => now);
    return { sut, advance: (ms: number) => (now += ms) };
  };

  it('should write a breakpoint prefix, then read it back and write the rest', () => {
    const { sut } = build();
    const first = sut.apply('m', [block('system', true), block('q1')], [150, 20]);
    const second = sut.apply('m', [block('system'), block('q1', true), block('q2', true)], [150, 20, 30]);

    expect(first).toEqual({ input_tokens: 20, cache_creation_input_tokens: 150, cache_read_input_tokens: 0 });
    // The read is found 1 block before the q1 breakpoint (lookback), then q2's prefix is written.
    expect(second).toEqual({
      input_tokens: 0,
      cache_creation_input_tokens: 50,
      cache_read_input_tokens: 150,
    });
  });

  it('should not cache a prefix below the minimum length', () => {
    const { sut } = build(1024);
    sut.apply('m', [block('short', true), block('q')], [500, 10]);

    expect(sut.apply('m', [block('short', true), block('q')], [500, 10]).cache_read_input_tokens).toBe(0);
  });

  it('should expire an entry after its TTL, and refresh it on every hit', () => {
    const { sut, advance } = build(100, 300_000);
    const prompt = [block('system', true), block('q')];
    sut.apply('m', prompt, [200, 5]);
    advance(299_000);
    expect(sut.apply('m', prompt, [200, 5]).cache_read_input_tokens).toBe(200); // refreshed here
    advance(299_000);
    expect(sut.apply('m', prompt, [200, 5]).cache_read_input_tokens).toBe(200);
    advance(300_001);

    expect(sut.apply('m', prompt, [200, 5])).toEqual({
      input_tokens: 5,
      cache_creation_input_tokens: 200,
      cache_read_input_tokens: 0,
    });
  });

  it('should keep models and changed prefixes apart', () => {
    const { sut } = build();
    sut.apply('m', [block('system', true)], [200]);

    expect(sut.apply('other', [block('system', true)], [200]).cache_read_input_tokens).toBe(0);
    expect(sut.apply('m', [block('system!', true)], [200]).cache_read_input_tokens).toBe(0);
  });

  it('should refuse more than 4 breakpoints as Anthropic does', () => {
    const cached = { type: 'text', text: 'x', cache_control: { type: 'ephemeral' } };
    expect(() =>
      parseMessagesRequest({
        model: 'm',
        max_tokens: 5,
        system: [cached, cached],
        messages: [{ role: 'user', content: [cached, cached, cached] }],
      }),
    ).toThrow(/A maximum of 4 blocks with cache_control/);
  });
});

describe('Anthropic Messages mode with the official SDK', () => {
  let sim: RunningSimulator;
  let client: Anthropic;

  beforeAll(async () => {
    sim = await startEngineSimulator({ timing: { timeScale: 0 }, replyTokens: { min: 4, max: 8 } });
    client = new Anthropic({ baseURL: sim.url, apiKey: 'sk-ant-test', maxRetries: 0 });
  });
  afterAll(() => sim.close());
  afterEach(() => sim.engine.setFaults({ errorRate: 0, errorStatus: 500, retryAfterSeconds: null }));

  it('should answer a non-streamed message with text, a stop reason and usage', async () => {
    const message = await client.messages.create({
      model: 'claude-sim-sonnet',
      max_tokens: 8,
      system: 'You are terse.',
      messages: [{ role: 'user', content: 'What is a KV cache?' }],
    });

    expect(message).toMatchObject({ type: 'message', role: 'assistant', model: 'claude-sim-sonnet' });
    expect(message.content[0]).toMatchObject({ type: 'text' });
    expect(['end_turn', 'max_tokens']).toContain(message.stop_reason);
    expect(message.usage.input_tokens).toBeGreaterThan(0);
    expect(message.usage.output_tokens).toBeGreaterThan(0);
  });

  it('should stream events the SDK assembles into the final message', async () => {
    const stream = client.messages.stream({
      model: 'claude-sim-sonnet',
      max_tokens: 8,
      messages: [{ role: 'user', content: 'Hello?' }],
    });
    let text = '';
    stream.on('text', (t) => (text += t));
    const final = await stream.finalMessage();

    expect(text.length).toBeGreaterThan(0);
    expect(final.content[0]).toMatchObject({ type: 'text', text });
  });

  it("should answer an injected 429 in Anthropic's error shape with Retry-After, and a bad request as 400", async () => {
    sim.engine.setFaults({ errorRate: 1, errorStatus: 429, retryAfterSeconds: 7 });
    const limited = await client.messages
      .create({ model: 'claude-sim', max_tokens: 4, messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    sim.engine.setFaults({ errorRate: 0 });
    const bad = await client.messages
      .create({ model: 'claude-sim', max_tokens: 4, messages: [] })
      .catch((e: unknown) => e);

    expect(limited).toBeInstanceOf(RateLimitError);
    expect((limited as RateLimitError).headers?.get('retry-after')).toBe('7');
    expect((limited as RateLimitError).error).toMatchObject({
      type: 'error',
      error: { type: 'rate_limit_error' },
    });
    expect(bad).toBeInstanceOf(BadRequestError);
  });
});
