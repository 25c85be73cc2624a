import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import cors from '@fastify/cors';
import helmet from 'helmet';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { parseJsonBody } from './json-body';
import { toProblem } from './problem.filter';

/** Longest path parameter Fastify routes (its `maxParamLength`), chars; longer is a 414 problem. */
export const MAX_PARAM_LENGTH = 100;

/** A reply, as far as a framework error needs it (typed structurally: Nest runs its own Fastify copy). */
interface ProblemReply {
  code(status: number): ProblemReply;
  header(name: string, value: string): ProblemReply;
  /** `never`: Fastify types the payload per route; a problem body is always acceptable JSON. */
  send(body: never): unknown;
}

/** The Fastify server options `frameworkErrorOptions` sets. */
export interface FrameworkErrorOptions {
  routerOptions: { maxParamLength: number };
  frameworkErrors: (
    error: Error & { statusCode?: number; code?: string },
    request: { url?: string; id: unknown },
    reply: ProblemReply,
  ) => void;
  clientErrorHandler: (err: NodeJS.ErrnoException, socket: Socket) => void;
}

/** Reason phrases of the statuses Node's HTTP parser answers by itself. */
const CLIENT_ERROR_TITLES: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
};

/** The status for an error of Node's HTTP parser (`clientError`), as Fastify's default handler picks it. */
function clientErrorStatus(err: NodeJS.ErrnoException): number {
  if (err.code === 'HPE_HEADER_OVERFLOW') return 431;
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 408;
  return 400;
}

/**
 * Fastify server options that make its own errors RFC 9457 problems like every other error:
 * `frameworkErrors` (a path with bad percent-encoding, a parameter longer than MAX_PARAM_LENGTH) and
 * `clientErrorHandler` (what Node's HTTP parser rejects before Fastify sees a request: oversized
 * headers, malformed requests such as the bytes left over after a short `content-length`).
 */
export function frameworkErrorOptions(): FrameworkErrorOptions {
  return {
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: (error, request, reply) => {
      const status = error.statusCode ?? 400;
      const detail =
        error.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? `A path parameter is longer than ${MAX_PARAM_LENGTH} characters.`
          : error.code === 'FST_ERR_BAD_URL'
            ? 'The path is not a valid URL (bad percent-encoding).'
            : error.message;
      const problem = toProblem(
        Object.assign(new Error(detail), { statusCode: status }),
        (request.url ?? '').slice(0, 200),
        String(request.id),
      );
      void reply
        .code(status)
        .header('content-type', 'application/problem+json')
        .header('x-request-id', String(request.id))
        .send(problem as never);
    },
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: Socket) => {
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      const status = clientErrorStatus(err);
      const title = CLIENT_ERROR_TITLES[status];
      const requestId = randomUUID();
      const body = JSON.stringify({
        type: `https://kvchat.dev/problems/${title.replace(/ /g, '')}`,
        title,
        status,
        detail: status === 431 ? 'The request headers are too large.' : 'The request is not valid HTTP.',
        instance: '',
        code: title.replace(/ /g, ''),
        requestId,
      });
      socket.end(
        `HTTP/1.1 ${status} ${title}\r\nConnection: close\r\nContent-Type: application/problem+json\r\n` +
          `x-request-id: ${requestId}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    },
  };
}

/**
 * A Fastify plugin as Nest's adapter takes it. @fastify/* plugins are typed against the root `fastify`
 * package; @nestjs/platform-fastify runs its own copy of the same major version.
 */
type NestPlugin = Parameters<NestFastifyApplication['register']>[0];

/** What `hardenHttp` turns on. */
export interface HttpHardeningOptions {
  /** Browser origins allowed by CORS (`*` = any); empty = CORS off. */
  corsOrigins: readonly string[];
  /** Largest accepted body, bytes (BODY_LIMIT_BYTES). */
  bodyLimit: number;
}

/**
 * Registers, on the Fastify instance under Nest:
 * - the JSON body parser (`parseJsonBody`): prototype-poisoning safe, nesting and NUL/lone-surrogate
 *   checks before validation, errors as 400 problems naming the field;
 * - security headers (helmet's middleware, built once, in an `onRequest` hook), with a content security
 *   policy that Swagger UI at /docs runs under;
 * - CORS (`@fastify/cors`) only when origins are configured: preflights are answered (204) for those
 *   origins; with none, no `Access-Control-*` header is ever sent.
 */
export async function hardenHttp(app: NestFastifyApplication, options: HttpHardeningOptions): Promise<void> {
  const fastify = app.getHttpAdapter().getInstance();
  fastify.removeContentTypeParser(['application/json']);
  fastify.addContentTypeParser(
    'application/json',
    { parseAs: 'string', bodyLimit: options.bodyLimit },
    (_request, body, done) => {
      try {
        done(null, parseJsonBody(typeof body === 'string' ? body : body.toString('utf8')));
      } catch (e) {
        done(e as Error);
      }
    },
  );
  // helmet's middleware is built once: @fastify/helmet 13 builds it again on every request (its CSP
  // directives parsed each time: ~1-3 % of the loop's CPU on /v1/chat/completions, docs/scaling.md).
  const securityHeaders = helmet({
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        // Swagger UI (served at /docs) uses inline styles and an inline init script.
        scriptSrc: ["'self'", "'unsafe-inline'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:', 'https:'],
      },
    },
  });
  fastify.addHook('onRequest', (request, reply, done) => {
    // helmet 8 throws its errors rather than passing them on; `next` is always called without one.
    securityHeaders(request.raw, reply.raw, () => done());
  });
  if (options.corsOrigins.length > 0) {
    await app.register(cors as unknown as NestPlugin, {
      origin: options.corsOrigins.includes('*') ? '*' : [...options.corsOrigins],
      methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
      allowedHeaders: ['authorization', 'content-type', 'accept', 'x-request-id', 'idempotency-key'],
      exposedHeaders: ['x-request-id', 'x-kvchat-cache', 'retry-after', 'idempotent-replayed'],
      maxAge: 600,
    });
  }
}
