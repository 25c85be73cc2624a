import type { ProblemBody } from './problem-body';

/**
 * The OpenAI error object (`{"error": {"message", "type", "param", "code"}}`), as the OpenAI API and its
 * SDKs expect it: the SDKs read `error.message` into `err.message`, `error.type`, `error.param` and
 * `error.code` into the error's fields. See https://platform.openai.com/docs/guides/error-codes.
 */
export interface OpenAiErrorBody {
  error: {
    message: string;
    type: string;
    param: string | null;
    code: string | null;
    /** kvchat's problem code, request id and extensions (`missingScopes`, `limit`, ...); SDKs ignore it. */
    kvchat: Record<string, unknown>;
  };
}

/**
 * Paths that answer errors in OpenAI's shape instead of RFC 9457 problem details: the OpenAI-compatible
 * surface (`/v1/chat/completions`, `/v1/embeddings`, `/v1/models[/id]`), query string ignored. The
 * conversation routes and the rest of the API keep problem details.
 */
export function isOpenAiPath(url: string): boolean {
  const path = url.split('?', 1)[0].replace(/\/+$/, '');
  return (
    path === '/v1/chat/completions' ||
    path === '/v1/embeddings' ||
    path === '/v1/models' ||
    path.startsWith('/v1/models/')
  );
}

/** OpenAI's `error.type` for a status (401 `invalid_request_error` as OpenAI answers a bad key). */
function openAiType(status: number, code: string): string {
  if (status === 401) return 'invalid_request_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return code === 'BudgetExceeded' ? 'insufficient_quota' : 'rate_limit_error';
  if (status === 503) return 'service_unavailable';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** OpenAI's `error.code` for the codes its SDKs and clients branch on; else kvchat's code in snake case. */
function openAiCode(status: number, code: string): string {
  switch (code) {
    case 'Unauthorized':
      return 'invalid_api_key';
    case 'ModelNotFound':
      return 'model_not_found';
    case 'ContextLengthExceeded':
      return 'context_length_exceeded';
    case 'RateLimitExceeded':
      return 'rate_limit_exceeded';
    case 'BudgetExceeded':
      return 'insufficient_quota';
    default:
      return status === 404 && code === 'NotFound' ? 'not_found' : snakeCase(code);
  }
}

const snakeCase = (code: string): string =>
  code
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/\s+/g, '_')
    .toLowerCase();

/**
 * The request field a validation message names (class-validator: `temperature must not be greater
 * than 2`, `messages.0.role must be ...`, `property tools should not exist`), as OpenAI's `param`
 * writes it (`messages[0].role`); null when none is named.
 */
export function paramOf(message: string): string | null {
  const unknown = /^(?:([\w.[\]]+)\.)?property (\S+) should not exist/.exec(message);
  if (unknown) return bracketIndices(unknown[1] ? `${unknown[1]}.${unknown[2]}` : unknown[2]);
  const named =
    /^([a-z_][\w]*(?:\.[\w]+)*(?:\[\d+\](?:\.[\w]+)*)*) (?:must|should|is|has|cannot|total)\b/.exec(message);
  return named ? bracketIndices(named[1]) : null;
}

const bracketIndices = (path: string): string => path.replace(/\.(\d+)(?=\.|$)/g, '[$1]');

/**
 * A problem (what `toProblem` made of an error) in OpenAI's error shape: the same status, `message` =
 * the problem's `detail` (the server's text, as the SDK shows it), `param` = the field a validation or
 * size error names (`field` extension or the first message), `code` = OpenAI's code where one exists.
 */
export function toOpenAiError(problem: ProblemBody): OpenAiErrorBody {
  const field = typeof problem.field === 'string' ? problem.field : null;
  const errors = Array.isArray(problem.errors) ? problem.errors.map(String) : [];
  return {
    error: {
      message: problem.detail,
      type: openAiType(problem.status, problem.code),
      param:
        field ??
        (errors.length > 0 ? paramOf(errors[0]) : problem.status === 400 ? paramOf(problem.detail) : null),
      code: openAiCode(problem.status, problem.code),
      kvchat: kvchatMember(problem),
    },
  };
}

/** The problem's code, request id and extension members (not the RFC 9457 members the error restates). */
function kvchatMember(problem: ProblemBody): Record<string, unknown> {
  const {
    type: _type,
    title: _title,
    status: _status,
    detail: _detail,
    instance: _instance,
    ...rest
  } = problem;
  return rest;
}
