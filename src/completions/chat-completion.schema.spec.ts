import { type ArgumentMetadata, ValidationPipe } from '@nestjs/common';
import fc from 'fast-check';
import { defined, field, optional, rare } from '../../test/factories/body-arbitraries';
import { toCommand } from './chat-completion.mapping';
import { isPlainChatCompletionBody } from './chat-completion.schema';
import { ChatCompletionRequestDto } from './dto/chat-completion.dto';

/** The route's pipe without the schema: what the DTO says of a body. */
const dtoPipe = new ValidationPipe({ transform: true, whitelist: false, validateCustomDecorators: true });
const metadata: ArgumentMetadata = { type: 'custom', metatype: ChatCompletionRequestDto, data: undefined };

const number = (lo: number, hi: number) =>
  field([lo, (lo + hi) / 2, hi], [lo - 0.01, hi + 0.01, String(hi), null, true]);
const integer = (lo: number, hi: number) => field([lo, hi], [lo - 1, hi + 1, lo + 0.5, String(lo), null]);
const text = (max: number) => field(['hi', '', 'x'.repeat(max)], ['x'.repeat(max + 1), 3, null]);
const message = fc
  .record({
    role: field(['system', 'developer', 'user', 'assistant'], ['tool', 'robot', 1]),
    content: field<unknown>(
      ['What is a KV cache?', '', [{ type: 'text', text: 'a' }], [{ type: 'text', text: 'a', extra: 1 }]],
      [[], [{ type: 'image_url', image_url: 'x' }], [{ type: 'text' }], null, 7],
    ),
    name: optional(text(256)),
    tool_call_id: rare(fc.constant('call_1')),
    extra: rare(fc.constant(1)),
  })
  .map(defined);
const body = fc
  .record({
    model: text(300),
    messages: fc.oneof(
      { weight: 8, arbitrary: fc.array(message, { minLength: 1, maxLength: 3 }) },
      { weight: 1, arbitrary: fc.constantFrom<unknown>([], 'hi', null, {}) },
    ),
    stream: optional(field<unknown>([true, false], ['true', null])),
    stream_options: optional(
      field<unknown>([{ include_usage: true }, {}], [{ include_usage: 'yes' }, { other: 1 }, null]),
    ),
    temperature: optional(number(0, 2)),
    top_p: optional(number(0, 1)),
    max_tokens: optional(integer(1, 32768)),
    max_completion_tokens: optional(integer(1, 32768)),
    n: optional(integer(1, 16)),
    stop: optional(
      field<unknown>(['\n', ['a', 'b'], ['a', 'b', 'c', 'd']], [['a', 'b', 'c', 'd', 'e'], [1], 5, null]),
    ),
    seed: optional(field<unknown>([0, 42, -7], [1.5, '42', null])),
    presence_penalty: optional(number(-2, 2)),
    frequency_penalty: optional(number(-2, 2)),
    user: optional(text(256)),
    cache: optional(
      field<unknown>(
        [{}, { mode: 'bypass' }, { mode: 'no-store', maxAgeSeconds: 0 }],
        [{ mode: 'never' }, { maxAgeSeconds: -1 }, 'x'],
      ),
    ),
    tools: rare(fc.constant([])),
    vendor_field: rare(fc.constant(1)),
  })
  .map(defined);

describe('the plain chat completion schema', () => {
  it('should accept only bodies the DTO accepts, and map them to the same command', async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(body, async (raw) => {
        const plain = structuredClone(raw) as Record<string, unknown>;
        if (!isPlainChatCompletionBody(plain)) return;
        accepted++;
        const dto = (await dtoPipe.transform(structuredClone(raw), metadata)) as ChatCompletionRequestDto;
        expect(JSON.parse(JSON.stringify(toCommand(plain, plain)))).toEqual(
          JSON.parse(JSON.stringify(toCommand(dto, raw))),
        );
      }),
      { numRuns: 3000, seed: 14 },
    );
    // The property says something only if the schema accepted a fair share of the bodies.
    expect(accepted).toBeGreaterThan(200);
  });

  it('should accept the common request shapes', () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: [{ type: 'text', text: 'What is a KV cache?' }] },
    ];
    expect(isPlainChatCompletionBody({ model: 'm', messages })).toBe(true);
    expect(
      isPlainChatCompletionBody({
        model: 'm',
        messages,
        stream: true,
        stream_options: { include_usage: true },
        temperature: 0.7,
        max_tokens: 256,
        stop: ['\n\n'],
        seed: 42,
        user: 'u-1',
        cache: { mode: 'no-store', maxAgeSeconds: 60 },
      }),
    ).toBe(true);
    expect(isPlainChatCompletionBody({ model: 'm', messages, tools: [] })).toBe(false);
    expect(isPlainChatCompletionBody({ model: 'm', messages, temperature: null })).toBe(false);
  });
});
