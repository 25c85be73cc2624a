import { randomUUID } from 'node:crypto';
import {
  type ArgumentsHost,
  Catch,
  type ExceptionFilter,
  HttpException,
  HttpStatus,
  Logger,
} from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { clientDetail, clientExtensions } from './client-detail';
import { dependencyFailure } from './dependency-errors';
import { DomainError } from './domain-error';
import { isOpenAiPath, toOpenAiError } from './openai-error';
import type { ProblemBody } from './problem-body';
import { PROBLEM_STATUSES } from './problem-statuses';

export type { ProblemBody } from './problem-body';

/** Detail of a 413 for a body over Fastify's limit: the limit's variable, and the way around it. */
const BODY_TOO_LARGE =
  'The request body is larger than BODY_LIMIT_BYTES (knowledge documents can be uploaded larger as multipart/form-data).';

/** Reason phrases of the statuses outside the IANA registry that kvchat answers with. */
const UNREGISTERED_TITLES: Record<number, string> = {
  // nginx's code for "the client closed the connection before the response was sent".
  499: 'Client Closed Request',
};

/** Maps a status code to its reason phrase. */
function titleFor(status: number): string {
  if (UNREGISTERED_TITLES[status]) return UNREGISTERED_TITLES[status];
  const name = HttpStatus[status];
  return typeof name === 'string'
    ? name
        .toLowerCase()
        .split('_')
        .map((w) => w[0].toUpperCase() + w.slice(1))
        .join(' ')
    : 'Error';
}

/** A Terminus health-check failure (`{status: 'error', info, error, details}`), if `error` is one. */
function terminusResult(error: unknown): { status: number; body: Record<string, unknown> } | null {
  if (!(error instanceof HttpException)) return null;
  const body = error.getResponse();
  if (typeof body !== 'object' || body === null) return null;
  const b = body as Record<string, unknown>;
  return b.status === 'error' && 'details' in b && 'error' in b
    ? { status: error.getStatus(), body: b }
    : null;
}

/** Builds a problem body (also used for SSE `error` events once headers are sent). */
export function toProblem(thrown: unknown, instance: string, requestId: string): ProblemBody {
  // Redis or PostgreSQL not answering is a 503 naming it, whichever layer the raw error came from.
  const error = dependencyFailure(thrown) ?? thrown;
  if (error instanceof DomainError) {
    // Typed over every code; the fallback guards errors built outside TypeScript's view (a cast, plain JS).
    const status: number = PROBLEM_STATUSES[error.code] ?? 500;
    return {
      ...clientExtensions(error.extensions),
      type: `https://kvchat.dev/problems/${error.code}`,
      title: titleFor(status),
      status,
      detail: clientDetail(error.message),
      instance,
      code: error.code,
      requestId,
    };
  }
  if (error instanceof HttpException) {
    const status = error.getStatus();
    const response = error.getResponse();
    const message =
      typeof response === 'object' && response !== null && 'message' in response
        ? (response as { message: unknown }).message
        : error.message;
    const errors = Array.isArray(message) ? message.map(String) : undefined;
    const code =
      status === 413
        ? 'PayloadTooLarge'
        : status === 400
          ? 'ValidationFailed'
          : titleFor(status).replace(/ /g, '');
    const detail = errors ? errors.join('; ') : String(message);
    return {
      type: `https://kvchat.dev/problems/${code}`,
      title: titleFor(status),
      status,
      // Fastify's body limit reaches here as Nest's PayloadTooLargeException.
      detail: status === 413 && /body is too large/i.test(detail) ? BODY_TOO_LARGE : detail,
      instance,
      code,
      requestId,
      ...(errors ? { errors } : {}),
    };
  }
  // Fastify's own errors (body too large, bad JSON, unsupported media type) carry a statusCode.
  const fastifyStatus = (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof fastifyStatus === 'number' && fastifyStatus >= 400 && fastifyStatus < 500) {
    const code = fastifyStatus === 413 ? 'PayloadTooLarge' : titleFor(fastifyStatus).replace(/ /g, '');
    return {
      type: `https://kvchat.dev/problems/${code}`,
      title: titleFor(fastifyStatus),
      status: fastifyStatus,
      detail: fastifyStatus === 413 ? BODY_TOO_LARGE : (error as Error).message,
      instance,
      code,
      requestId,
    };
  }
  return {
    type: 'https://kvchat.dev/problems/InternalError',
    title: 'Internal Server Error',
    status: 500,
    detail: 'An unexpected error occurred; it has been logged with the request id.',
    instance,
    code: 'InternalError',
    requestId,
  };
}

/**
 * Headers a problem response carries besides its body: `WWW-Authenticate: Bearer` on every 401
 * (RFC 6750 §3; `error="invalid_token"` when a key was presented) and `Retry-After` (seconds) when
 * the problem says when to retry (`retryAfterSeconds`: rate limits, budgets, unavailable dependencies).
 */
export function problemHeaders(problem: ProblemBody, presentedCredentials = false): Record<string, string> {
  const headers: Record<string, string> = {};
  if (problem.status === 401) {
    headers['www-authenticate'] = presentedCredentials
      ? 'Bearer realm="kvchat", error="invalid_token"'
      : 'Bearer realm="kvchat"';
  }
  const retryAfter = problem.retryAfterSeconds;
  if (typeof retryAfter === 'number' && Number.isFinite(retryAfter)) {
    headers['retry-after'] = String(Math.max(1, Math.ceil(retryAfter)));
  }
  return headers;
}

/**
 * The one global exception filter: every error becomes an RFC 9457 problem
 * (`application/problem+json`) with the request id — or, on the OpenAI-compatible paths
 * (`isOpenAiPath`), the same status with OpenAI's error object (`application/json`), so OpenAI SDKs
 * show the server's text. Unknown errors are logged and leak nothing.
 */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  private readonly logger = new Logger('ProblemFilter');

  catch(error: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const request = ctx.getRequest<FastifyRequest>();
    const reply = ctx.getResponse<FastifyReply>();
    const requestId = String(request?.id ?? randomUUID());
    const health = terminusResult(error);
    if (health && !reply.sent) {
      // Health checks keep Terminus's documented body (`status`, `info`, `error`, `details`) for probes and tools.
      void reply.status(health.status).send({ ...health.body, requestId });
      return;
    }
    const problem = toProblem(error, request?.url ?? '', requestId);
    if (problem.status >= 500) {
      this.logger.error({ err: error, requestId, code: problem.code }, `request failed: ${problem.code}`);
    } else if (error instanceof DomainError && problem.detail !== error.message) {
      // The client got a detail without internal addresses; the operator keeps the whole message.
      this.logger.warn(
        { requestId, code: problem.code, detail: error.message, ...error.extensions },
        'request rejected',
      );
    }
    if (reply.sent || reply.raw.headersSent) {
      // A streaming response already started: the stream writer reports errors as SSE events.
      return;
    }
    sendProblem(reply, problem, request?.url ?? '', typeof request?.headers?.authorization === 'string');
  }
}

/**
 * Writes a problem with its headers: as `application/problem+json`, or in OpenAI's error shape on the
 * OpenAI-compatible paths (the request id stays in the `x-request-id` header).
 */
export function sendProblem(
  reply: FastifyReply,
  problem: ProblemBody,
  url: string,
  presentedCredentials: boolean,
): FastifyReply {
  void reply.status(problem.status).headers(problemHeaders(problem, presentedCredentials));
  if (isOpenAiPath(url)) {
    return reply.header('content-type', 'application/json; charset=utf-8').send(toOpenAiError(problem));
  }
  return reply.header('content-type', 'application/problem+json').send(problem);
}
