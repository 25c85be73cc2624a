import { AppConfig } from './app.config';
import { ContextConfig } from './context.config';
import { InferenceConfig } from './inference.config';
import { MetricsConfig } from './metrics.config';
import { RedisConfig } from './redis.config';

/** Reads one loaded configuration class. */
export type ConfigLookup = <T extends object>(cls: new () => T) => T;

/**
 * A rule over several variables: `check` returns why the combination cannot work, or null.
 * `variables` are named in the boot error.
 */
export interface ConfigRule {
  variables: readonly string[];
  check(config: ConfigLookup): string | null;
}

/**
 * Combinations of individually valid values that cannot work. Each stops the boot with a message naming
 * its variables (see `loadAllConfig`); a module that adds such a combination adds its rule here.
 */
export const CONFIG_RULES: readonly ConfigRule[] = [
  {
    variables: ['INFERENCE_DEFAULT_MAX_TOKENS', 'INFERENCE_MAX_CONTEXT_TOKENS'],
    check: (c) => {
      const { INFERENCE_DEFAULT_MAX_TOKENS: out, INFERENCE_MAX_CONTEXT_TOKENS: window } = c(InferenceConfig);
      return out >= window
        ? `the default completion budget (${out} tokens) leaves no room for a prompt in a ${window}-token window`
        : null;
    },
  },
  {
    variables: ['INFERENCE_FIRST_TOKEN_TIMEOUT_MS', 'INFERENCE_TIMEOUT_MS'],
    check: (c) => {
      const { INFERENCE_FIRST_TOKEN_TIMEOUT_MS: first, INFERENCE_TIMEOUT_MS: whole } = c(InferenceConfig);
      return first > whole
        ? `the first-token timeout (${first} ms) is longer than the whole-request timeout (${whole} ms)`
        : null;
    },
  },
  {
    variables: [
      'CONTEXT_SUMMARY_MAX_TOKENS',
      'CONTEXT_LOW_WATER',
      'INFERENCE_MAX_CONTEXT_TOKENS',
      'INFERENCE_DEFAULT_MAX_TOKENS',
    ],
    check: (c) => {
      const context = c(ContextConfig);
      if (context.CONTEXT_POLICY !== 'summary') return null;
      const inference = c(InferenceConfig);
      // The summary policy compacts to CONTEXT_LOW_WATER × budget, the summary included (summary.policy.ts).
      const budget = inference.INFERENCE_MAX_CONTEXT_TOKENS - inference.INFERENCE_DEFAULT_MAX_TOKENS;
      const room = Math.floor(budget * context.CONTEXT_LOW_WATER);
      return context.CONTEXT_SUMMARY_MAX_TOKENS >= room
        ? `CONTEXT_POLICY=summary: a ${context.CONTEXT_SUMMARY_MAX_TOKENS}-token summary cannot fit under ` +
            `CONTEXT_LOW_WATER × the prompt budget (${context.CONTEXT_LOW_WATER} × ${budget} = ${room} tokens); ` +
            'the policy would silently behave like `compact`'
        : null;
    },
  },
  {
    variables: ['CONTEXT_SUMMARY_TRIGGER', 'CONTEXT_LOW_WATER'],
    check: (c) => {
      const { CONTEXT_POLICY, CONTEXT_SUMMARY_TRIGGER: trigger, CONTEXT_LOW_WATER: low } = c(ContextConfig);
      return CONTEXT_POLICY === 'summary' && trigger <= low
        ? `CONTEXT_POLICY=summary: the summary trigger (${trigger}) must be above the low-water mark (${low}), ` +
            'or every turn after a compaction queues another summary'
        : null;
    },
  },
  {
    variables: ['METRICS_ENABLED', 'NODE_ENV', 'METRICS_PORT', 'METRICS_BEARER_TOKEN'],
    check: (c) => {
      const metrics = c(MetricsConfig);
      return c(AppConfig).NODE_ENV === 'production' &&
        metrics.METRICS_ENABLED === true &&
        metrics.METRICS_PORT === undefined &&
        metrics.METRICS_BEARER_TOKEN === undefined
        ? 'in production /metrics is served only on its own port (METRICS_PORT) or behind a token (METRICS_BEARER_TOKEN)'
        : null;
    },
  },
  {
    variables: ['TURN_LOCK_RENEW_MS', 'TURN_LOCK_LEASE_MS'],
    check: (c) => {
      const { TURN_LOCK_RENEW_MS: renew, TURN_LOCK_LEASE_MS: lease } = c(RedisConfig);
      return renew * 2 > lease
        ? `the turn lock is renewed every ${renew} ms but its lease is ${lease} ms: renewing at most every ` +
            'half lease leaves room for one failed renewal before a running turn loses its lock'
        : null;
    },
  },
  {
    variables: ['METRICS_PORT', 'PORT'],
    check: (c) => {
      const port = c(MetricsConfig).METRICS_PORT;
      return port !== undefined && port !== 0 && port === c(AppConfig).PORT
        ? `the metrics port (${port}) is the API port`
        : null;
    },
  },
];
