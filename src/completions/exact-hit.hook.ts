import { Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost, Reflector } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PinoLogger } from 'nestjs-pino';
import { AccessPolicy } from '../auth/access-policy.service';
import { type AuthenticatedRequest, REQUIRED_SCOPES } from '../auth/auth.guard';
import type { Scope } from '../auth/scopes';
import { fastifyOf } from '../common/fastify-instance';
import { CachingConfig } from '../config/caching.config';
import { cacheHeader, markExactMiss, toChatCompletion, toCommand } from './chat-completion.mapping';
import { isPlainChatCompletionBody } from './chat-completion.schema';
import { ChatCompletionsController } from './chat-completions.controller';
import { ChatCompletionsService } from './chat-completions.service';

/** The route the fast path answers (Fastify's route pattern, as `request.routeOptions.url`). */
const ROUTE = '/v1/chat/completions';

/**
 * Answers an exact response-cache hit of a non-streamed `POST /v1/chat/completions` in a Fastify
 * `preHandler` hook, before Nest's router, guards, interceptors and validation pipe: an exact hit is one
 * Redis round trip, and that machinery was ~45 % of its CPU (docs/scaling.md, completions, third pass).
 *
 * By `preHandler` the `onRequest` hooks have run for this request as for any other: the API key and its
 * rate limits (ApiKeyHook; `request.auth`), admission control (TurnAdmissionHook), HTTP metrics, the
 * request logger. The hook then checks the body with a precompiled JSON schema (chat-completion.schema.ts),
 * the route's scopes and the key's model allow-list, builds the command as the controller does
 * (`toCommand`) and asks ChatCompletionsService.exactHit — which does on a hit what the normal path does
 * (statistics, Prometheus, the Langfuse trace, the usage record) — and replies with the same body and
 * headers as the controller. Anything else falls through to the normal path: a miss (marked, so that the
 * normal path does not look the exact key up again: `exactMissed`), a stream, an `Idempotency-Key`, a body
 * outside the schema, a missing scope or model (the normal path answers the 403/404), a failed lookup.
 * Off with RESPONSE_CACHE_EXACT_FAST_PATH=false or RESPONSE_CACHE_ENABLED=false.
 */
@Injectable()
export class ExactHitHook implements OnModuleInit {
  private readonly scopes: Scope[];

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly config: CachingConfig,
    private readonly completions: ChatCompletionsService,
    private readonly access: AccessPolicy,
    private readonly logger: PinoLogger,
    reflector: Reflector,
  ) {
    // The route's scopes, as ApiKeyGuard reads them (class and method lists add up).
    const handler = Object.getOwnPropertyDescriptor(ChatCompletionsController.prototype, 'create')?.value as (
      ...args: unknown[]
    ) => unknown;
    this.scopes =
      reflector.getAllAndMerge<Scope[]>(REQUIRED_SCOPES, [handler, ChatCompletionsController]) ?? [];
  }

  onModuleInit(): void {
    const fastify = fastifyOf(this.adapterHost);
    if (!fastify) return; // no HTTP server (CLI, module tests)
    if (!this.config.RESPONSE_CACHE_ENABLED || !this.config.RESPONSE_CACHE_EXACT_FAST_PATH) return;
    fastify.addHook('preHandler', (request, reply) => this.preHandler(request, reply));
  }

  private async preHandler(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    if (request.method !== 'POST' || request.routeOptions.url !== ROUTE) return undefined;
    const auth = (request as Partial<AuthenticatedRequest>).auth;
    // An idempotent request is stored and replayed by IdempotencyInterceptor: the normal path.
    if (!auth || request.headers['idempotency-key'] !== undefined) return undefined;
    const body = request.body;
    // A stream (a hit is replayed as events) goes the normal way.
    if (!isPlainChatCompletionBody(body) || body.stream === true) return undefined;
    let done;
    try {
      this.access.assertScopes(auth, this.scopes);
      this.access.assertModelAllowed(auth, body.model);
      done = await this.completions.exactHit(auth, {
        ...toCommand(body, body),
        requestId: String(request.id),
      });
    } catch {
      // The normal path throws the same error and answers it in its shape (OpenAI's error object).
      return undefined;
    }
    if (done === 'miss') markExactMiss(request);
    if (done === null || done === 'miss') return undefined;
    try {
      // As TenantLogInterceptor does on the normal path: the access line carries the tenant.
      this.logger.assign({ tenantId: auth.tenantId });
    } catch {
      // Outside a request's logging scope: nothing to add to.
    }
    // A hit charges no tokens (the controller's chargeTokens of 0 is a no-op).
    return reply.code(200).header('x-kvchat-cache', cacheHeader(done)).send(toChatCompletion(done));
  }
}
