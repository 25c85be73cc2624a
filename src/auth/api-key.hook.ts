import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, HttpAdapterHost, MetadataScanner, Reflector } from '@nestjs/core';
import { FASTIFY_ROUTE_CONFIG_METADATA } from '@nestjs/platform-fastify/constants';
import { METHOD_METADATA } from '@nestjs/common/constants';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendProblem, toProblem } from '../common/problem.filter';
import { IS_PUBLIC } from '../common/public.decorator';
import { ApiKeyService } from './api-key.service';
import { AuthUnavailable, BudgetExceeded, RateLimitExceeded, Unauthorized } from './auth.errors';
import { type AuthenticatedRequest, bearerToken } from './auth.guard';
import { RateLimitService } from './limits/rate-limit.service';
import { fastifyOf } from '../common/fastify-instance';

/** Fastify route config member telling the hook whether a route needs an API key. */
export const ROUTE_AUTH = 'kvchatAuth';

/** Probes and scrapes are never counted against a client IP (orchestrators poll them). */
const UNCOUNTED_PATHS = ['/health', '/metrics'];

/**
 * Resolves the API key and applies rate limits in a Fastify `onRequest` hook — before the body is
 * read or parsed — so a request with a missing, bad or over-limit key costs a hash and a cache
 * lookup, not the parsing of a megabyte of JSON. Sets `request.auth` for the guard and the
 * `x-ratelimit-*` headers on the response. Answers 401 (with `WWW-Authenticate: Bearer`) and 429
 * itself, as problem+json (OpenAI's error object on the OpenAI-compatible paths).
 *
 * Which routes need a key is decided from Nest's own metadata: at construction (before Nest
 * registers routes with Fastify) every controller route without @Public() gets
 * `config.kvchatAuth = 'key'` as its Fastify route config. Routes without it (Swagger UI, the 404
 * handler, @Public() ones) need no key; requests to them are counted per client IP
 * (RATE_LIMIT_IP_PER_MINUTE), probes and scrapes excepted.
 */
@Injectable()
export class ApiKeyHook implements OnModuleInit {
  private readonly logger = new Logger(ApiKeyHook.name);

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    discovery: DiscoveryService,
    reflector: Reflector,
    private readonly keys: ApiKeyService,
    private readonly limits: RateLimitService,
  ) {
    // Providers are built before app.init() registers routes, so the config is in place in time.
    markRoutes(discovery, reflector);
  }

  onModuleInit(): void {
    const fastify = fastifyOf(this.adapterHost);
    if (!fastify) return; // no HTTP server (CLI, module tests)
    fastify.addHook('onRequest', (request, reply) => this.onRequest(request, reply));
  }

  private async onRequest(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const config = request.routeOptions.config as unknown as Record<string, unknown> | undefined;
    try {
      if (config?.[ROUTE_AUTH] !== 'key') {
        if (!UNCOUNTED_PATHS.some((p) => request.url.startsWith(p))) await this.limits.admitIp(request.ip);
        return undefined;
      }
      const key = bearerToken(request.headers.authorization);
      if (!key) {
        await this.limits.admitIp(request.ip);
        throw new Unauthorized('Send the API key as `Authorization: Bearer <key>`.');
      }
      let auth;
      try {
        auth = await this.keys.verify(key);
      } catch (e) {
        if (e instanceof Unauthorized) await this.limits.admitIp(request.ip);
        else {
          this.logger.error({ err: e }, 'API key verification failed');
          throw new AuthUnavailable('API keys cannot be verified right now (database); retry shortly.', {
            dependency: 'database',
            retryAfterSeconds: 1,
          });
        }
        throw e;
      }
      (request as AuthenticatedRequest).auth = auth;
      void reply.headers(await this.limits.admit(auth));
      return undefined;
    } catch (e) {
      if (e instanceof RateLimitExceeded || e instanceof BudgetExceeded)
        void reply.headers(e.rateLimitHeaders);
      const problem = toProblem(e, request.url, String(request.id));
      // The body was never read: close the connection rather than keep it alive with unread bytes.
      const hasBody =
        Number(request.headers['content-length'] ?? 0) > 0 || 'transfer-encoding' in request.headers;
      if (hasBody) void reply.header('connection', 'close');
      // OpenAI-compatible paths answer in OpenAI's error shape (sendProblem), the rest as problem+json.
      return sendProblem(reply, problem, request.url, typeof request.headers.authorization === 'string');
    }
  }
}

/** Sets `config.kvchatAuth = 'key'` on every controller route that is not @Public(). */
function markRoutes(discovery: DiscoveryService, reflector: Reflector): void {
  const scanner = new MetadataScanner();
  for (const wrapper of discovery.getControllers()) {
    const controller = wrapper.metatype as (new (...args: unknown[]) => object) | undefined;
    if (!controller?.prototype) continue;
    const prototype = controller.prototype as Record<string, unknown>;
    for (const name of scanner.getAllMethodNames(prototype)) {
      const handler = prototype[name];
      if (typeof handler !== 'function' || Reflect.getMetadata(METHOD_METADATA, handler) === undefined)
        continue;
      const isPublic = reflector.getAllAndOverride<boolean>(IS_PUBLIC, [handler, controller]) === true;
      const existing = (Reflect.getMetadata(FASTIFY_ROUTE_CONFIG_METADATA, handler) ?? {}) as Record<
        string,
        unknown
      >;
      Reflect.defineMetadata(
        FASTIFY_ROUTE_CONFIG_METADATA,
        { ...existing, [ROUTE_AUTH]: isPublic ? 'public' : 'key' },
        handler,
      );
    }
  }
}
