/**
 * An error the simulator answers with an HTTP status and an OpenAI/vLLM error body. Thrown by the
 * engine and the request parsers; the server maps it with `errorBody`.
 */
export class SimulatorHttpError extends Error {
  readonly type: string;

  /**
   * @param retryAfterSeconds sent as `Retry-After` (an injected 429/503 of a rate-limited provider)
   */
  constructor(
    readonly status: number,
    message: string,
    type?: string,
    readonly retryAfterSeconds: number | null = null,
  ) {
    super(message);
    this.name = 'SimulatorHttpError';
    this.type = type ?? errorTypeForStatus(status);
  }
}

/** The error body in both shapes clients read: OpenAI's `{error:{...}}` and vLLM's flat `{object:'error', ...}`. */
export interface SimulatorErrorBody {
  object: 'error';
  message: string;
  type: string;
  param: null;
  code: number;
  error: { message: string; type: string; param: null; code: number };
}

export function errorBody(
  status: number,
  message: string,
  type = errorTypeForStatus(status),
): SimulatorErrorBody {
  return {
    object: 'error',
    message,
    type,
    param: null,
    code: status,
    error: { message, type, param: null, code: status },
  };
}

/** vLLM's error type names (`BadRequestError`, `NotFoundError`, ...) by status. */
export function errorTypeForStatus(status: number): string {
  switch (status) {
    case 400:
      return 'BadRequestError';
    case 401:
      return 'AuthenticationError';
    case 403:
      return 'PermissionDeniedError';
    case 404:
      return 'NotFoundError';
    case 409:
      return 'ConflictError';
    case 422:
      return 'UnprocessableEntityError';
    case 429:
      return 'RateLimitError';
    case 503:
      return 'ServiceUnavailableError';
    default:
      return status >= 500 ? 'InternalServerError' : 'BadRequestError';
  }
}

/** 400 with vLLM's wording when a request does not fit the context window. */
export function contextLengthError(
  maxModelLen: number,
  promptTokens: number,
  maxTokens?: number,
): SimulatorHttpError {
  if (maxTokens === undefined) {
    return new SimulatorHttpError(
      400,
      `This model's maximum context length is ${maxModelLen} tokens. However, you requested ` +
        `${promptTokens} tokens in the messages, Please reduce the length of the messages.`,
    );
  }
  return new SimulatorHttpError(
    400,
    `This model's maximum context length is ${maxModelLen} tokens. However, you requested ` +
      `${promptTokens + maxTokens} tokens (${promptTokens} in the messages, ${maxTokens} in the completion). ` +
      `Please reduce the length of the messages or completion.`,
  );
}
