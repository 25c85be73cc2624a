import { Logger } from '@nestjs/common';
import { loadConfigClass } from '../config/config.loader';
import { LangfuseConfig } from '../config/langfuse.config';
import { MetricsConfig } from '../config/metrics.config';
import { MetricsService } from './metrics.service';
import { maskContent, TracingService } from './tracing.service';

const settle = () => new Promise((r) => setTimeout(r, 10));

describe('TracingService', () => {
  const metrics = () => new MetricsService(loadConfigClass(MetricsConfig, { METRICS_PROCESS: 'false' }));
  let sut: TracingService | undefined;

  afterEach(async () => {
    await sut?.onApplicationShutdown();
    sut = undefined;
    jest.restoreAllMocks();
  });

  it('should hand out a no-op trace when the keys are not set', () => {
    sut = new TracingService(loadConfigClass(LangfuseConfig, {}), metrics());
    const trace = sut.startTurn({ tenantId: 't', conversationId: 'c', input: 'q' });
    expect(sut.enabled).toBe(false);
    expect(trace.id).toBeNull();
    expect(() => trace.generation('engine', []).end({ output: 'a' })).not.toThrow();
  });

  it('should drop and count events past LANGFUSE_MAX_QUEUE_EVENTS without throwing', async () => {
    // The SDK reports the refused delivery at shutdown on console.error.
    jest.spyOn(console, 'error').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const registry = metrics();
    sut = new TracingService(
      loadConfigClass(LangfuseConfig, {
        LANGFUSE_PUBLIC_KEY: 'pk',
        LANGFUSE_SECRET_KEY: 'sk',
        LANGFUSE_BASEURL: 'http://127.0.0.1:9',
        LANGFUSE_FLUSH_AT: '1000',
        LANGFUSE_FLUSH_INTERVAL_MS: '3600000',
        LANGFUSE_MAX_QUEUE_EVENTS: '3',
        LANGFUSE_RETRY_COUNT: '0',
        LANGFUSE_SHUTDOWN_TIMEOUT_MS: '200',
      }),
      registry,
    );
    const trace = sut.startTurn({ tenantId: 't', conversationId: 'c', input: 'q' });
    trace.span('route').end({ agent: 'assistant' });
    await settle();
    expect(sut.outstanding).toBe(3);
    const generation = trace.generation('engine', [{ role: 'user', content: 'q' }]);
    generation.firstToken();
    generation.end({ output: 'a', usage: { promptTokens: 10, completionTokens: 2, cachedTokens: 8 } });
    trace.end('a');
    await settle();
    expect(sut.outstanding).toBe(3);
    expect((await registry.scrape()).body).toContain('kvchat_langfuse_events_total{outcome="dropped"} 2');
  });

  it('should require both keys together', () => {
    expect(() => loadConfigClass(LangfuseConfig, { LANGFUSE_PUBLIC_KEY: 'pk' })).toThrow(
      /LANGFUSE_SECRET_KEY/,
    );
  });
});

describe('maskContent', () => {
  it('should replace every string with its length and keep numbers, booleans and shape', () => {
    const sut = maskContent([{ role: 'user', content: 'hello there', tokens: 3, cached: true, extra: null }]);
    expect(sut).toEqual([
      { role: '[masked: 4 chars]', content: '[masked: 11 chars]', tokens: 3, cached: true, extra: null },
    ]);
  });
});
