import { Logger } from '@nestjs/common';
import { AppConfig } from '../config/app.config';
import { loadConfigClass } from '../config/config.loader';
import { LangfuseConfig } from '../config/langfuse.config';
import { MetricsConfig } from '../config/metrics.config';
import { EngineTimeout } from '../inference/inference.errors';
import { MetricsService } from './metrics.service';
import { TracingService } from './tracing.service';
import { type TurnOutcome, TurnTelemetryService } from './turn-telemetry.service';

const outcome = (overrides: Partial<TurnOutcome> = {}): TurnOutcome => ({
  content: 'the answer text',
  model: 'm',
  replica: 'http://replica-0/v1',
  finishReason: 'stop',
  usage: { promptTokens: 50, completionTokens: 10, cachedTokens: 32 },
  timings: { ttftMs: 80, itlMs: 5 },
  route: { agent: 'assistant' },
  templateVersion: 'global@1+assistant@1',
  cache: { prefixReuse: 0.64 },
  ...overrides,
});

describe('TurnTelemetryService', () => {
  const build = (appEnv: Record<string, string> = {}) => {
    const metrics = new MetricsService(loadConfigClass(MetricsConfig, { METRICS_PROCESS: 'false' }));
    const tracing = new TracingService(loadConfigClass(LangfuseConfig, {}), metrics);
    return { metrics, sut: new TurnTelemetryService(tracing, metrics, loadConfigClass(AppConfig, appEnv)) };
  };
  const start = { tenantId: 't1', conversationId: 'c1', content: 'the question text', streamed: false };

  afterEach(() => jest.restoreAllMocks());

  it('should log a completed turn without message content by default', () => {
    const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const { sut } = build();
    sut.begin(start).succeed(outcome(), { totalMs: 200, messageId: 'm1' });
    const [fields, message] = log.mock.calls[0] as [Record<string, unknown>, string];
    expect(message).toBe('turn completed');
    expect(fields).toMatchObject({
      conversationId: 'c1',
      source: 'engine',
      agent: 'assistant',
      messageId: 'm1',
    });
    expect(JSON.stringify(fields)).not.toContain('question text');
    expect(JSON.stringify(fields)).not.toContain('answer text');
  });

  it('should log the question and answer when LOG_MESSAGE_CONTENT is on', () => {
    const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const { sut } = build({ LOG_MESSAGE_CONTENT: 'true' });
    sut.begin(start).succeed(outcome(), { totalMs: 200 });
    expect(log.mock.calls[0][0]).toMatchObject({ content: 'the question text', answer: 'the answer text' });
  });

  it('should count a response-cache hit by its type and record no engine figures', async () => {
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const { sut, metrics } = build();
    sut.begin(start).succeed(
      outcome({
        replica: null,
        usage: { promptTokens: 0, completionTokens: 12, cachedTokens: 0 },
        cache: { response: { hit: true, type: 'semantic', similarity: 0.93 } },
      }),
      { totalMs: 15 },
    );
    const text = (await metrics.scrape()).body;
    expect(text).toContain('kvchat_turns_total{source="semantic",agent="assistant"} 1');
    expect(text).not.toContain('kvchat_completion_tokens_total{');
  });

  it('should record a failure once with its code and replica, even if reported twice', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const { sut, metrics } = build();
    const turn = sut.begin(start);
    turn.fail(new EngineTimeout('no first token', { replica: 'http://replica-0/v1' }));
    turn.fail(new Error('again'));
    turn.succeed(outcome(), { totalMs: 1 });
    const text = (await metrics.scrape()).body;
    expect(text).toContain('kvchat_turn_errors_total{code="EngineTimeout"} 1');
    expect(text).toContain(
      'kvchat_engine_errors_total{replica="http://replica-0/v1",code="EngineTimeout"} 1',
    );
    expect(text).not.toContain('kvchat_turns_total{');
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0][1]).toBe('turn failed: EngineTimeout');
  });
});
