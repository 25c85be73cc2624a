/**
 * HTTP status of every domain error code: the one code -> status table, read by the problem filter
 * (problem.filter.ts). It is an HTTP concern, so it lives here, not in the services. `DomainError.code`
 * is typed as a key of this table, so an error class whose code has no status here fails
 * `npm run typecheck` instead of falling to a 500 at run time.
 */
export const PROBLEM_STATUSES = {
  InvalidRequest: 400,
  PayloadTooLarge: 413,
  Unauthorized: 401,
  Forbidden: 403,
  ScopeMissing: 403,
  ModelNotAllowed: 403,
  ApiKeyNotFound: 404,
  TenantNotFound: 404,
  TenantExists: 409,
  RateLimitExceeded: 429,
  BudgetExceeded: 429,
  RateLimiterUnavailable: 503,
  AuthUnavailable: 503,
  ConversationNotFound: 404,
  ConversationBusy: 409,
  ContextLengthExceeded: 400,
  EngineBadRequest: 400,
  EngineError: 502,
  EngineStreamCut: 502,
  EngineUnavailable: 503,
  EngineTimeout: 504,
  // Callers fall back to the local tokenizer; one that reaches a client is an engine that cannot serve the request.
  EngineTokenizeUnsupported: 502,
  // The client closed the connection (nginx's 499): logged at info, never as a server error.
  RequestAborted: 499,
  ModelNotFound: 404,
  EmbeddingsUnavailable: 503,
  AgentNotFound: 400,
  KnowledgeBaseNotFound: 404,
  KnowledgeBaseExists: 409,
  DocumentNotFound: 404,
  IngestionNotFound: 404,
  DocumentTooLarge: 413,
  UnsupportedDocumentType: 415,
  InvalidDocument: 400,
  DocumentUrlNotAllowed: 403,
  DocumentFetchFailed: 502,
  DocumentUnreadable: 422,
  IngestionQueueUnavailable: 503,
  QueryEmbeddingMismatch: 400,
  DependencyUnavailable: 503,
  // Admission control (src/lifecycle/turn-admission.service.ts): no room for another turn; Retry-After.
  Overloaded: 503,
  IdempotencyKeyInvalid: 400,
  IdempotencyKeyInUse: 409,
  IdempotencyKeyReused: 422,
} as const satisfies Record<string, number>;

/** Every domain error code (`ConversationNotFound`, `EngineUnavailable`, ...). */
export type ErrorCode = keyof typeof PROBLEM_STATUSES;
