import { parsePrices } from './price-lookup';
import { priceUsage } from './usage-pricing';
import type { UsageInput } from './usage.types';

const base: UsageInput = {
  tenantId: '11111111-1111-1111-1111-111111111111',
  requestId: 'r1',
  endpoint: 'turn',
  model: 'm',
  promptTokens: 1000,
  cachedTokens: 600,
  completionTokens: 200,
  latencyMs: 120,
};
const price = { input: 3, cachedInput: 0.3, output: 15 };

describe('priceUsage', () => {
  it('should price uncached, cached and completion tokens and credit the prefix cache with the prefill it spared', () => {
    const sut = priceUsage(base, price);
    expect(sut.cost).toBeCloseTo((400 * 3 + 600 * 0.3 + 200 * 15) / 1e6, 12);
    expect(sut).toMatchObject({
      cacheLayer: 'engine-prefix',
      avoidedTokensPrefix: 600,
      keyId: '00000000-0000-0000-0000-000000000000',
    });
    expect(sut.avoidedCostPrefix).toBeCloseTo((600 * 2.7) / 1e6, 12);
    expect(sut.costAvoided).toBe(sut.avoidedCostPrefix);
  });

  it('should price a response-cache hit at zero and credit its layer with the miss it replaced', () => {
    const sut = priceUsage(
      {
        ...base,
        promptTokens: 0,
        cachedTokens: 0,
        completionTokens: 0,
        cacheLayer: 'semantic',
        replaced: { promptTokens: 1000, completionTokens: 200 },
      },
      price,
    );
    expect(sut).toMatchObject({
      cost: 0,
      cacheLayer: 'semantic',
      avoidedTokensSemantic: 1200,
      avoidedTokensExact: 0,
      avoidedTokensPrefix: 0,
    });
    expect(sut.avoidedCostSemantic).toBeCloseTo((1000 * 3 + 200 * 15) / 1e6, 12);
    expect(sut.costAvoided).toBe(sut.avoidedCostSemantic);
  });

  it('should record an unpriced model at cost 0, clamp cached to prompt and say none when nothing was cached', () => {
    expect(priceUsage({ ...base, cachedTokens: 5000 }, null)).toMatchObject({
      cost: 0,
      cachedTokens: 1000,
      costAvoided: 0,
    });
    expect(priceUsage({ ...base, cachedTokens: 0 }, price).cacheLayer).toBe('none');
  });
});

describe('parsePrices', () => {
  it('should default cachedInput to input and reject malformed entries naming the model', () => {
    expect(parsePrices('{"a":{"input":1,"output":2}}').get('a')).toEqual({
      input: 1,
      cachedInput: 1,
      output: 2,
    });
    expect(parsePrices(undefined).size).toBe(0);
    expect(() => parsePrices('{"b":{"input":-1,"output":2}}')).toThrow('model b');
    expect(() => parsePrices('[1]')).toThrow('USAGE_PRICES');
  });
});
