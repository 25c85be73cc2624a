import { formatResetDuration, periodOf } from './periods';

describe('periodOf', () => {
  it('should name the UTC day and month and end at the next one', () => {
    const now = new Date('2026-12-31T23:59:59.500Z');
    expect(periodOf('tokensPerDay', now)).toEqual({
      label: '2026-12-31',
      end: new Date('2027-01-01T00:00:00Z'),
    });
    expect(periodOf('spendPerMonth', now)).toEqual({
      label: '2026-12',
      end: new Date('2027-01-01T00:00:00Z'),
    });
    expect(periodOf('tokensPerMonth', new Date('2026-02-10T00:00:00Z')).end).toEqual(
      new Date('2026-03-01T00:00:00Z'),
    );
  });
});

describe('formatResetDuration', () => {
  it('should write delays as OpenAI does (Go durations)', () => {
    expect(formatResetDuration(0)).toBe('0ms');
    expect(formatResetDuration(17.2)).toBe('18ms');
    expect(formatResetDuration(1000)).toBe('1s');
    expect(formatResetDuration(59_001)).toBe('1m0s');
    expect(formatResetDuration(360_000)).toBe('6m0s');
    expect(formatResetDuration(3_723_000)).toBe('1h2m3s');
  });
});
