import { variablesOf, loadConfigClass, ConfigValidationError, type Env } from './config.loader';
import { loadAllConfig } from './config.module';
import { CONFIG_CLASSES } from './config.registry';

/**
 * A non-default value for every variable, as it would be written in the environment, and what the typed
 * configuration must hold for it. `env` adds variables a value needs (a key that comes in pairs).
 * A variable added to a configuration class must be added here.
 */
const NON_DEFAULTS: Record<string, { raw: string; expected: unknown; env?: Env }> = {
  AGENT_CLASSIFIER: { raw: 'llm', expected: 'llm' },
  AGENT_ROUTING_FLOOR: { raw: '0.25', expected: 0.25 },
  AGENT_FALLBACK: { raw: 'helper', expected: 'helper' },
  AGENT_ROUTING_MAX_EXAMPLES: { raw: '8', expected: 8 },
  AGENT_ROUTING_MODEL: { raw: 'nearest', expected: 'nearest' },
  AGENT_GRAPH_RUNTIME: { raw: 'langgraph', expected: 'langgraph' },
  PORT: { raw: '8080', expected: 8080 },
  HOST: { raw: '127.0.0.1', expected: '127.0.0.1' },
  NODE_ENV: { raw: 'production', expected: 'production' },
  LOG_LEVEL: { raw: 'debug', expected: 'debug' },
  LOG_FORMAT: { raw: 'json', expected: 'json' },
  LOG_MESSAGE_CONTENT: { raw: 'true', expected: true },
  MAX_MESSAGE_CHARS: { raw: '1000', expected: 1000 },
  MAX_PROMPT_CHARS: { raw: '5000', expected: 5000 },
  BODY_LIMIT_BYTES: { raw: '65536', expected: 65_536 },
  SERVER_SECRET: { raw: 'a-server-secret-of-32-characters', expected: 'a-server-secret-of-32-characters' },
  API_KEY_CACHE_SECONDS: { raw: '0', expected: 0 },
  RATE_LIMIT_PER_MINUTE: { raw: '120', expected: 120 },
  API_KEY_ROTATION_GRACE_SECONDS: { raw: '60', expected: 60 },
  RATE_LIMIT_REDIS_URL: { raw: 'redis://limiter:6380', expected: 'redis://limiter:6380' },
  RATE_LIMIT_REDIS_TIMEOUT_MS: { raw: '40', expected: 40 },
  RATE_LIMIT_FAIL_OPEN: { raw: 'false', expected: false },
  RATE_LIMIT_IP_PER_MINUTE: { raw: '0', expected: 0 },
  USAGE_BATCH_SIZE: { raw: '50', expected: 50 },
  USAGE_FLUSH_MS: { raw: '20', expected: 20 },
  USAGE_BUFFER_MAX: { raw: '5000', expected: 5000 },
  USAGE_ROLLUP_INTERVAL_SECONDS: { raw: '5', expected: 5 },
  USAGE_PRICES: { raw: '{"m":{"input":1,"output":2}}', expected: '{"m":{"input":1,"output":2}}' },
  DOCS_ENABLED: { raw: 'false', expected: false },
  CORS_ORIGINS: {
    raw: 'https://app.example.com, http://localhost:5173',
    expected: ['https://app.example.com', 'http://localhost:5173'],
  },
  RESPONSE_CACHE_ENABLED: { raw: 'false', expected: false },
  RESPONSE_CACHE_SEMANTIC: { raw: 'false', expected: false },
  RESPONSE_CACHE_EXACT_FAST_PATH: { raw: 'false', expected: false },
  RESPONSE_CACHE_TTL_SECONDS: { raw: '60', expected: 60 },
  RESPONSE_CACHE_MAX_ENTRIES_PER_TENANT: { raw: '50', expected: 50 },
  RESPONSE_CACHE_SIMILARITY_THRESHOLD: { raw: '0.9', expected: 0.9 },
  RESPONSE_CACHE_CANDIDATES: { raw: '2', expected: 2 },
  RESPONSE_CACHE_GUARDS: { raw: 'negation,number', expected: ['negation', 'number'] },
  RESPONSE_CACHE_WORD_VECTORS: { raw: 'false', expected: false },
  RESPONSE_CACHE_VERIFIER_URL: {
    raw: 'http://rerank:8000/v1/rerank',
    expected: 'http://rerank:8000/v1/rerank',
  },
  RESPONSE_CACHE_VERIFIER_MODEL: { raw: 'bge-reranker', expected: 'bge-reranker' },
  RESPONSE_CACHE_VERIFIER_API_KEY: { raw: 'rk-1', expected: 'rk-1' },
  RESPONSE_CACHE_VERIFIER_MIN_SCORE: { raw: '0.7', expected: 0.7 },
  RESPONSE_CACHE_VERIFIER_TIMEOUT_MS: { raw: '500', expected: 500 },
  RESPONSE_CACHE_SINGLE_FLIGHT_WAIT_MS: { raw: '0', expected: 0 },
  EMBEDDINGS_PROVIDER: { raw: 'remote', expected: 'remote' },
  EMBEDDINGS_LOCAL_MODEL: { raw: 'lexical', expected: 'lexical' },
  EMBEDDINGS_LOCAL_THREADS: { raw: '2', expected: 2 },
  EMBEDDINGS_URL: { raw: 'http://embed:8000/v1', expected: 'http://embed:8000/v1' },
  EMBEDDINGS_MODEL: { raw: 'bge-small', expected: 'bge-small' },
  EMBEDDINGS_DIMENSION: { raw: '384', expected: 384 },
  EMBEDDINGS_API_KEY: { raw: 'ek-1', expected: 'ek-1' },
  EMBEDDINGS_BATCH_SIZE: { raw: '16', expected: 16 },
  EMBEDDINGS_TIMEOUT_MS: { raw: '2500', expected: 2500 },
  CONTEXT_POLICY: { raw: 'summary', expected: 'summary' },
  CONTEXT_LOW_WATER: { raw: '0.5', expected: 0.5 },
  CONTEXT_SUMMARY_TRIGGER: { raw: '0.9', expected: 0.9 },
  CONTEXT_SUMMARY_MAX_TOKENS: { raw: '256', expected: 256 },
  CONTEXT_SUMMARY_WAIT_MS: { raw: '0', expected: 0 },
  PROMPT_LAYOUT: { raw: 'naive', expected: 'naive' },
  PROMPT_DATE_IN_TAIL: { raw: 'off', expected: false },
  TOKENIZER: { raw: 'local', expected: 'local' },
  CONTEXT_PROMPT_CHAIN_TOKENS: { raw: '4000000', expected: 4_000_000 },
  DATABASE_URL: { raw: 'postgres://u:p@db:5432/kv', expected: 'postgres://u:p@db:5432/kv' },
  DATA_DIR: { raw: '/var/lib/kvchat', expected: '/var/lib/kvchat' },
  EMBEDDED_DB_PORT: { raw: '0', expected: 0 },
  DB_MIGRATE_ON_BOOT: { raw: 'no', expected: false },
  DB_POOL_MAX: { raw: '4', expected: 4 },
  DB_DEBUG: { raw: 'yes', expected: true },
  INFERENCE_ENDPOINTS: {
    raw: 'http://vllm-0:8000/v1,http://vllm-1:8000/v1',
    expected: ['http://vllm-0:8000/v1', 'http://vllm-1:8000/v1'],
  },
  INFERENCE_MODEL: { raw: 'llama', expected: 'llama' },
  INFERENCE_API_KEY: { raw: 'ik-1', expected: 'ik-1' },
  MODEL_CATALOGUE_PATH: { raw: 'config/models.yaml', expected: 'config/models.yaml' },
  PROVIDER_BREAKER_FAILURES: { raw: '5', expected: 5 },
  PROVIDER_BREAKER_COOLDOWN_MS: { raw: '1500', expected: 1500 },
  INFERENCE_TIMEOUT_MS: { raw: '90000', expected: 90_000 },
  INFERENCE_FIRST_TOKEN_TIMEOUT_MS: { raw: '30000', expected: 30_000 },
  INFERENCE_MAX_CONTEXT_TOKENS: { raw: '8192', expected: 8192 },
  INFERENCE_DEFAULT_MAX_TOKENS: { raw: '256', expected: 256 },
  INFERENCE_BLOCK_SIZE: { raw: '32', expected: 32 },
  ROUTER_POLICY: { raw: 'round-robin', expected: 'round-robin' },
  ROUTER_SPILL_THRESHOLD: { raw: '3', expected: 3 },
  ROUTER_PREFIX_MIN_MATCH_TOKENS: { raw: '64', expected: 64 },
  ROUTER_PREFIX_LOAD_WEIGHT: { raw: '0.5', expected: 0.5 },
  ROUTER_PREFIX_CAPACITY_BLOCKS: { raw: '1024', expected: 1024 },
  ROUTER_RETRIES: { raw: '0', expected: 0 },
  ROUTER_HEALTH_INTERVAL_SECONDS: { raw: '1', expected: 1 },
  ENGINE_METRICS_SCRAPE_SECONDS: { raw: '0', expected: 0 },
  SIMULATOR_REPLICAS: { raw: '3', expected: 3 },
  SIMULATOR_TIME_SCALE: { raw: '0', expected: 0 },
  SIMULATOR_REPLIES_FILE: { raw: 'replies.jsonl', expected: 'replies.jsonl' },
  SIMULATOR_PREFIX_CACHING: { raw: 'false', expected: false },
  SIMULATOR_LMCACHE: { raw: 'FALSE', expected: false },
  LANGFUSE_PUBLIC_KEY: { raw: 'pk-lf-1', expected: 'pk-lf-1', env: { LANGFUSE_SECRET_KEY: 'sk-lf-1' } },
  LANGFUSE_SECRET_KEY: { raw: 'sk-lf-1', expected: 'sk-lf-1', env: { LANGFUSE_PUBLIC_KEY: 'pk-lf-1' } },
  LANGFUSE_BASEURL: { raw: 'http://langfuse:3000', expected: 'http://langfuse:3000' },
  LANGFUSE_FLUSH_AT: { raw: '1', expected: 1 },
  LANGFUSE_FLUSH_INTERVAL_MS: { raw: '100', expected: 100 },
  LANGFUSE_REQUEST_TIMEOUT_MS: { raw: '1000', expected: 1000 },
  LANGFUSE_RETRY_COUNT: { raw: '0', expected: 0 },
  LANGFUSE_RETRY_DELAY_MS: { raw: '10', expected: 10 },
  LANGFUSE_MAX_QUEUE_EVENTS: { raw: '10', expected: 10 },
  LANGFUSE_SHUTDOWN_TIMEOUT_MS: { raw: '0', expected: 0 },
  LANGFUSE_MASK_CONTENT: { raw: '1', expected: true },
  LANGFUSE_ENVIRONMENT: { raw: 'staging', expected: 'staging' },
  METRICS_PROCESS: { raw: 'false', expected: false },
  METRICS_TENANT_LABEL: { raw: 'true', expected: true },
  METRICS_ENABLED: { raw: 'false', expected: false },
  METRICS_PORT: { raw: '9464', expected: 9464 },
  METRICS_BEARER_TOKEN: { raw: 'a-metrics-token-123', expected: 'a-metrics-token-123' },
  QUEUE_JOB_ATTEMPTS: { raw: '1', expected: 1 },
  QUEUE_JOB_BACKOFF_MS: { raw: '0', expected: 0 },
  QUEUE_KEEP_COMPLETED: { raw: '0', expected: 0 },
  QUEUE_STALL_SECONDS: { raw: '30', expected: 30 },
  KNOWLEDGE_MAX_DOCUMENT_BYTES: { raw: '2048', expected: 2048 },
  KNOWLEDGE_MAX_FILES_PER_UPLOAD: { raw: '3', expected: 3 },
  KNOWLEDGE_URL_ALLOWLIST: {
    raw: 'https://docs.example.com/a/, http://intranet/kb/',
    expected: ['https://docs.example.com/a/', 'http://intranet/kb/'],
  },
  KNOWLEDGE_URL_TIMEOUT_MS: { raw: '500', expected: 500 },
  KNOWLEDGE_CHUNK_TOKENS: { raw: '128', expected: 128 },
  KNOWLEDGE_CHUNK_OVERLAP_TOKENS: { raw: '16', expected: 16 },
  KNOWLEDGE_LEAD_TOKENS: { raw: '0', expected: 0 },
  KNOWLEDGE_SEARCH_K: { raw: '7', expected: 7 },
  KNOWLEDGE_SEARCH_CANDIDATES: { raw: '30', expected: 30 },
  KNOWLEDGE_RRF_K: { raw: '10', expected: 10 },
  KNOWLEDGE_RERANK_URL: { raw: 'http://rerank:8000/v1/rerank', expected: 'http://rerank:8000/v1/rerank' },
  KNOWLEDGE_RERANK_MODEL: { raw: 'bge-reranker', expected: 'bge-reranker' },
  KNOWLEDGE_RERANK_API_KEY: { raw: 'rk-2', expected: 'rk-2' },
  KNOWLEDGE_RERANK_CANDIDATES: { raw: '12', expected: 12 },
  KNOWLEDGE_RERANK_TIMEOUT_MS: { raw: '900', expected: 900 },
  REDIS_URL: { raw: 'redis://cache:6380/2', expected: 'redis://cache:6380/2' },
  REDIS_KEY_PREFIX: { raw: 'tenant-x:', expected: 'tenant-x:' },
  REDIS_COMMAND_TIMEOUT_MS: { raw: '750', expected: 750 },
  TURN_LOCK_WAIT_MS: { raw: '5000', expected: 5000 },
  TURN_LOCK_LEASE_MS: { raw: '8000', expected: 8000 },
  TURN_LOCK_RENEW_MS: { raw: '2000', expected: 2000 },
  TURN_DEADLINE_MS: { raw: '20000', expected: 20000 },
  TURN_SWEEP_INTERVAL_SECONDS: { raw: '5', expected: 5 },
  IDEMPOTENCY_TTL_SECONDS: { raw: '3600', expected: 3600 },
  IDEMPOTENCY_RUNNING_TTL_SECONDS: { raw: '120', expected: 120 },
  LOG_PROBE_REQUESTS: { raw: 'true', expected: true },
  KVCHAT_ROLE: { raw: 'worker', expected: 'worker', env: { DATABASE_URL: 'postgres://u:p@db:5432/kv' } },
  SHUTDOWN_DRAIN_MS: { raw: '5000', expected: 5000 },
  SIMULATOR_PREFIX_LIMIT: { raw: 'true', expected: true },
  TURNS_MAX_IN_FLIGHT: { raw: '32', expected: 32 },
  TURNS_MAX_QUEUED: { raw: '0', expected: 0 },
  TURN_QUEUE_TIMEOUT_MS: { raw: '250', expected: 250 },
  TURN_SHED_RETRY_AFTER_SECONDS: { raw: '5', expected: 5 },
  HTTP_LISTEN_BACKLOG: { raw: '4096', expected: 4096 },
  HTTP_KEEP_ALIVE_TIMEOUT_MS: { raw: '65000', expected: 65_000 },
  SSE_FLUSH_INTERVAL_MS: { raw: '20', expected: 20 },
  HEALTH_READY_MIN_ENGINES: { raw: '2', expected: 2 },
  HEALTH_CHECK_TIMEOUT_MS: { raw: '750', expected: 750 },
};

const classes = CONFIG_CLASSES as readonly (new () => object)[];
const declared = classes.flatMap((cls) => variablesOf(cls).map((variable) => ({ cls, variable })));

/** Message of the ConfigValidationError `run` throws ('' when it does not throw). */
function bootError(run: () => unknown): string {
  try {
    run();
  } catch (e) {
    if (e instanceof ConfigValidationError) return e.message;
    throw e;
  }
  return '';
}

describe('configuration', () => {
  it('should have a non-default value in this spec for every variable', () => {
    expect(declared.map((d) => d.variable).filter((v) => !(v in NON_DEFAULTS))).toEqual([]);
  });

  it.each(declared)(
    'should read a non-default $variable back through the typed config',
    ({ cls, variable }) => {
      const { raw, expected, env } = NON_DEFAULTS[variable];
      const sut = loadConfigClass(cls, { ...env, [variable]: raw }) as Record<string, unknown>;

      expect((new cls() as Record<string, unknown>)[variable]).not.toEqual(expected);
      expect(sut[variable]).toEqual(expected);
    },
  );

  it('should parse every spelling of false on a boolean whose default is true', () => {
    for (const raw of ['false', 'FALSE', '0', 'no', 'off']) {
      expect(loadAllConfig({ RESPONSE_CACHE_ENABLED: raw }).size).toBeGreaterThan(0);
      const caching = [
        ...loadAllConfig({ RESPONSE_CACHE_ENABLED: raw, RESPONSE_CACHE_SEMANTIC: raw }).values(),
      ].find((c) => 'RESPONSE_CACHE_ENABLED' in c) as {
        RESPONSE_CACHE_ENABLED: boolean;
        RESPONSE_CACHE_SEMANTIC: boolean;
      };
      expect(caching).toMatchObject({ RESPONSE_CACHE_ENABLED: false, RESPONSE_CACHE_SEMANTIC: false });
    }
  });

  it.each([
    ['RESPONSE_CACHE_ENABLED', 'maybe'],
    ['DOCS_ENABLED', 'perhaps'],
    ['PORT', 'eighty'],
    ['AGENT_ROUTING_FLOOR', '1.5'],
    ['CONTEXT_LOW_WATER', '2'],
    ['RESPONSE_CACHE_GUARDS', 'negation,typo'],
    ['CORS_ORIGINS', 'example.com'],
    ['METRICS_BEARER_TOKEN', 'short'],
  ])('should stop the boot naming %s when it is %p', (variable, raw) => {
    expect(bootError(() => loadAllConfig({ [variable]: raw }))).toMatch(new RegExp(`\\b${variable}: `));
  });

  it.each<[string, Env, string[]]>([
    [
      'a summary budget that cannot fit under CONTEXT_LOW_WATER × the window',
      { CONTEXT_POLICY: 'summary', INFERENCE_MAX_CONTEXT_TOKENS: '1024' },
      ['CONTEXT_SUMMARY_MAX_TOKENS', 'CONTEXT_LOW_WATER', 'INFERENCE_MAX_CONTEXT_TOKENS'],
    ],
    [
      'a summary trigger at or below the low-water mark',
      { CONTEXT_POLICY: 'summary', CONTEXT_SUMMARY_TRIGGER: '0.5', CONTEXT_LOW_WATER: '0.6' },
      ['CONTEXT_SUMMARY_TRIGGER', 'CONTEXT_LOW_WATER'],
    ],
    [
      'a default completion budget as large as the window',
      { INFERENCE_MAX_CONTEXT_TOKENS: '4096', INFERENCE_DEFAULT_MAX_TOKENS: '4096' },
      ['INFERENCE_DEFAULT_MAX_TOKENS', 'INFERENCE_MAX_CONTEXT_TOKENS'],
    ],
    [
      'a first-token timeout longer than the request timeout',
      { INFERENCE_TIMEOUT_MS: '1000', INFERENCE_FIRST_TOKEN_TIMEOUT_MS: '2000' },
      ['INFERENCE_FIRST_TOKEN_TIMEOUT_MS', 'INFERENCE_TIMEOUT_MS'],
    ],
    [
      '/metrics on in production on the API port with no token',
      { NODE_ENV: 'production', METRICS_ENABLED: 'true' },
      ['METRICS_ENABLED', 'METRICS_PORT', 'METRICS_BEARER_TOKEN'],
    ],
    [
      'a turn lock renewed less often than every half lease',
      { TURN_LOCK_LEASE_MS: '3000', TURN_LOCK_RENEW_MS: '2000' },
      ['TURN_LOCK_RENEW_MS', 'TURN_LOCK_LEASE_MS'],
    ],
    [
      'the metrics port equal to the API port',
      { PORT: '9000', METRICS_PORT: '9000' },
      ['METRICS_PORT', 'PORT'],
    ],
  ])('should stop the boot on %s, naming the variables', (_, env, variables) => {
    const message = bootError(() => loadAllConfig(env));

    for (const variable of variables) expect(message).toContain(variable);
  });

  it('should accept the summary policy when the summary fits under the low-water mark', () => {
    expect(
      bootError(() => loadAllConfig({ CONTEXT_POLICY: 'summary', INFERENCE_MAX_CONTEXT_TOKENS: '4096' })),
    ).toBe('');
  });
});
