import { DomainError } from '../common/domain-error';

/** No replica could be reached (connection refused, all unhealthy, engine says 503). Maps to 503. */
export class EngineUnavailable extends DomainError {
  readonly code = 'EngineUnavailable';
}

/** The engine did not produce a first token, or did not finish, in time. Maps to 504. */
export class EngineTimeout extends DomainError {
  readonly code = 'EngineTimeout';
}

/** The engine answered with an error (5xx, malformed response). Maps to 502. */
export class EngineError extends DomainError {
  readonly code = 'EngineError';
}

/** The engine's stream ended before it finished (connection cut, no finish reason). Maps to 502. */
export class EngineStreamCut extends DomainError {
  readonly code = 'EngineStreamCut';
}

/** The engine rejected the request as invalid (e.g. the prompt exceeds its context). Maps to 400. */
export class EngineBadRequest extends DomainError {
  readonly code = 'EngineBadRequest';
}

/** The caller aborted the request (client disconnected). Not an engine failure. */
export class RequestAborted extends DomainError {
  readonly code = 'RequestAborted';
}

/** The engine has no `/tokenize` endpoint (not vLLM-compatible there); callers fall back to a local tokenizer. */
export class EngineTokenizeUnsupported extends DomainError {
  readonly code = 'EngineTokenizeUnsupported';
}

/**
 * No connection could be made to one replica (refused, reset before any byte, DNS). Same code and status
 * as EngineUnavailable; the distinction tells InferenceService to mark that replica unhealthy and try another.
 */
export class EngineUnreachable extends EngineUnavailable {}

/** The request names a model the catalogue does not list. Same code and status (404) as OpenAI's `model_not_found`. */
export class ModelNotServed extends DomainError {
  readonly code = 'ModelNotFound';
}
