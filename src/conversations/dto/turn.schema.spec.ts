import { type ArgumentMetadata, BadRequestException, ValidationPipe } from '@nestjs/common';
import fc from 'fast-check';
import { defined, field, optional, rare } from '../../../test/factories/body-arbitraries';
import { STRICT_BODY } from '../../common/schema-body.decorator';
import { PostTurnDto } from './turn.dto';
import { isPlainPostTurnBody } from './turn.schema';

/** The route's pipe without the schema: what the DTO says of a body (the global pipe's options). */
const dtoPipe = new ValidationPipe({ ...STRICT_BODY, validateCustomDecorators: true });
const metadata: ArgumentMetadata = { type: 'custom', metatype: PostTurnDto, data: undefined };

const body = fc
  .record({
    content: field(['What is a KV cache?', 'x', 'é 東京 😀', ' '], ['', 3, null, ['hi']]),
    stream: optional(field([true, false], ['true', 1, null])),
    maxTokens: optional(field([1, 256, 32768], [0, 32769, 1.5, '16', null])),
    temperature: optional(field([0, 0.7, 2], [-0.01, 2.01, '1', null, true])),
    cache: optional(
      field(
        [{}, { mode: 'default' }, { mode: 'bypass', maxAgeSeconds: 0 }, { maxAgeSeconds: 3600 }],
        [{ mode: 'sometimes' }, { maxAgeSeconds: -1 }, { maxAgeSeconds: 1.5 }, { extra: 1 }, null, 'default'],
      ),
    ),
    extra: rare(fc.constantFrom(1, 'x', null)),
  })
  .map(defined);

/** What the turn reads of a body, as the controller does. */
const command = (b: PostTurnDto) =>
  JSON.parse(
    JSON.stringify({
      content: b.content,
      stream: b.stream,
      maxTokens: b.maxTokens,
      temperature: b.temperature,
      cache: b.cache,
    }),
  ) as unknown;

describe('the turn body schema', () => {
  it('should accept only bodies the DTO accepts, and give the turn the same values', async () => {
    let accepted = 0;
    let refusedByBoth = 0;
    await fc.assert(
      fc.asyncProperty(body, async (raw) => {
        const plain = structuredClone(raw);
        if (!isPlainPostTurnBody(plain)) {
          // Refused here: the DTO decides (null optional fields are the only bodies it accepts and this refuses).
          const dto = await dtoPipe.transform(structuredClone(raw), metadata).catch((e: unknown) => e);
          if (dto instanceof BadRequestException) refusedByBoth++;
          else expect(Object.values(raw)).toContain(null);
          return;
        }
        accepted++;
        const dto = (await dtoPipe.transform(structuredClone(raw), metadata)) as PostTurnDto;
        expect(command(plain)).toEqual(command(dto));
      }),
      { numRuns: 3000, seed: 29 },
    );
    // The property says something only if both outcomes were common.
    expect(accepted).toBeGreaterThan(300);
    expect(refusedByBoth).toBeGreaterThan(300);
  });

  it('should accept the common bodies and refuse undeclared fields and wrong types', () => {
    expect(isPlainPostTurnBody({ content: 'hi' })).toBe(true);
    expect(
      isPlainPostTurnBody({
        content: 'hi',
        stream: true,
        maxTokens: 256,
        temperature: 0.7,
        cache: { mode: 'no-store', maxAgeSeconds: 60 },
      }),
    ).toBe(true);
    expect(isPlainPostTurnBody({ content: '' })).toBe(false);
    expect(isPlainPostTurnBody({ content: 'hi', model: 'x' })).toBe(false);
    expect(isPlainPostTurnBody({ content: 'hi', maxTokens: '16' })).toBe(false);
    expect(isPlainPostTurnBody({ content: 'hi', cache: { mode: 'default', ttl: 1 } })).toBe(false);
  });
});
