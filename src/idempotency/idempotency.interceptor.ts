import {
  applyDecorators,
  type CallHandler,
  type ExecutionContext,
  Injectable,
  type NestInterceptor,
  SetMetadata,
  UseInterceptors,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ApiHeader } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { from, type Observable, of, switchMap, tap } from 'rxjs';
import { SseWriter } from '../common/sse';
import { IdempotencyKeyInvalid } from './idempotency.errors';
import { type Claim, IdempotencyService, type StoredResponse } from './idempotency.service';

/** How a route replays a stored response to a client that asked for a stream. */
export interface IdempotentRoute {
  /** Does this request ask for a streamed response? */
  wantsStream(request: FastifyRequest): boolean;
  /** Writes the stored (JSON) response as the route's stream would have carried it. */
  replayStream(sse: SseWriter, response: StoredResponse): void;
}

const IDEMPOTENT = Symbol('IDEMPOTENT');

/** Request member through which a streaming handler hands its final result to the interceptor. */
interface WithResult {
  idempotentResult?: StoredResponse;
  auth?: { tenantId: string };
}

/**
 * Records the final result of a streamed response (the JSON body the non-streamed request returns),
 * so that a repeat with the same `Idempotency-Key` replays it. JSON handlers need not call this.
 */
export function publishIdempotentResult(request: FastifyRequest, status: number, body: unknown): void {
  (request as FastifyRequest & WithResult).idempotentResult = { status, body };
}

/** `Idempotency-Key`: 1-255 printable ASCII characters; a structured-field string (quoted) is unquoted. */
export function parseIdempotencyKey(header: string | string[]): string {
  if (Array.isArray(header)) throw new IdempotencyKeyInvalid('must be sent once');
  const value = /^".*"$/.test(header) ? header.slice(1, -1) : header;
  if (value.length === 0) throw new IdempotencyKeyInvalid('is empty');
  if (value.length > 255) throw new IdempotencyKeyInvalid('is longer than 255 characters');
  if (!/^[\x20-\x7e]+$/.test(value)) throw new IdempotencyKeyInvalid('must be printable ASCII');
  return value;
}

/**
 * Makes a POST route idempotent under the `Idempotency-Key` header (see IdempotencyService): a repeat
 * replays the stored response with `Idempotent-Replayed: true` (as a stream when one is asked for and the
 * route can replay one). Without the header the route behaves as before.
 */
export function Idempotent(route: IdempotentRoute): MethodDecorator & ClassDecorator {
  return applyDecorators(
    SetMetadata(IDEMPOTENT, route),
    UseInterceptors(IdempotencyInterceptor),
    ApiHeader({
      name: 'Idempotency-Key',
      required: false,
      description:
        'Makes a retry safe (IETF draft-ietf-httpapi-idempotency-key-header): the same key and body return the ' +
        'stored result (`Idempotent-Replayed: true`), 409 while the first request runs, 422 for another body. ' +
        'Per tenant; kept IDEMPOTENCY_TTL_SECONDS.',
    }),
  );
}

@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  constructor(
    private readonly reflector: Reflector,
    private readonly idempotency: IdempotencyService,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const route = this.reflector.get<IdempotentRoute | undefined>(IDEMPOTENT, context.getHandler());
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest & WithResult>();
    const reply = http.getResponse<FastifyReply>();
    const header = request.headers['idempotency-key'];
    if (!route || header === undefined || !request.auth) return next.handle();
    const key = parseIdempotencyKey(header);
    const fingerprint = IdempotencyService.fingerprint(request.method, request.url, request.body);
    return from(this.idempotency.claim(request.auth.tenantId, key, fingerprint)).pipe(
      switchMap((claim) =>
        claim.kind === 'replay'
          ? this.replay(route, request, reply, claim)
          : this.run(claim, request, reply, next),
      ),
    );
  }

  private replay(
    route: IdempotentRoute,
    request: FastifyRequest,
    reply: FastifyReply,
    claim: Extract<Claim, { kind: 'replay' }>,
  ): Observable<unknown> {
    if (route.wantsStream(request)) {
      const sse = new SseWriter(reply, { headers: { 'idempotent-replayed': 'true' } });
      route.replayStream(sse, claim.response);
      sse.end();
      return of(undefined);
    }
    void reply.status(claim.response.status).header('idempotent-replayed', 'true');
    return of(claim.response.body);
  }

  private run(
    claim: Extract<Claim, { kind: 'run' }>,
    request: FastifyRequest & WithResult,
    reply: FastifyReply,
    next: CallHandler,
  ): Observable<unknown> {
    let settled = false;
    return next.handle().pipe(
      tap({
        next: (body) => {
          settled = true;
          const result = body !== undefined ? { status: reply.statusCode, body } : request.idempotentResult;
          // A stream that ended in an error event has no result: the key is freed for a retry.
          void (result ? this.idempotency.complete(claim, result) : this.idempotency.release(claim));
        },
        error: () => {
          settled = true;
          void this.idempotency.release(claim);
        },
        finalize: () => {
          if (!settled) void this.idempotency.release(claim);
        },
      }),
    );
  }
}
