import { loadConfigClass } from './config.loader';
import { AuthConfig } from './auth.config';
import { UsageConfig } from './usage.config';

describe('AuthConfig and UsageConfig', () => {
  it('should read every non-default value back, booleans included', () => {
    const sut = loadConfigClass(AuthConfig, {
      API_KEY_ROTATION_GRACE_SECONDS: '60',
      RATE_LIMIT_REDIS_URL: 'redis://limiter:6380',
      RATE_LIMIT_REDIS_TIMEOUT_MS: '40',
      RATE_LIMIT_FAIL_OPEN: 'false',
      RATE_LIMIT_IP_PER_MINUTE: '0',
    });
    expect(sut).toMatchObject({
      API_KEY_ROTATION_GRACE_SECONDS: 60,
      RATE_LIMIT_REDIS_URL: 'redis://limiter:6380',
      RATE_LIMIT_REDIS_TIMEOUT_MS: 40,
      RATE_LIMIT_FAIL_OPEN: false,
      RATE_LIMIT_IP_PER_MINUTE: 0,
    });
    expect(loadConfigClass(AuthConfig, {}).RATE_LIMIT_FAIL_OPEN).toBe(true);

    const usage = loadConfigClass(UsageConfig, {
      USAGE_BATCH_SIZE: '50',
      USAGE_FLUSH_MS: '20',
      USAGE_BUFFER_MAX: '5000',
      USAGE_ROLLUP_INTERVAL_SECONDS: '5',
      USAGE_PRICES: '{"m":{"input":1,"output":2}}',
    });
    expect(usage).toMatchObject({
      USAGE_BATCH_SIZE: 50,
      USAGE_FLUSH_MS: 20,
      USAGE_BUFFER_MAX: 5000,
      USAGE_ROLLUP_INTERVAL_SECONDS: 5,
      USAGE_PRICES: '{"m":{"input":1,"output":2}}',
    });
  });

  it('should name the variable when a value is malformed', () => {
    expect(() => loadConfigClass(AuthConfig, { RATE_LIMIT_REDIS_URL: 'http://x' })).toThrow(
      'RATE_LIMIT_REDIS_URL',
    );
    expect(() => loadConfigClass(UsageConfig, { USAGE_PRICES: '{not json' })).toThrow('USAGE_PRICES');
  });
});
