import type { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';

/**
 * The app's Fastify instance, for providers that register Fastify hooks in `onModuleInit`; undefined when
 * there is no HTTP server (command-line tools, module tests), where such a provider has nothing to do.
 */
export function fastifyOf(adapterHost: HttpAdapterHost): FastifyInstance | undefined {
  const fastify = adapterHost.httpAdapter?.getInstance<FastifyInstance>();
  return fastify && typeof fastify.addHook === 'function' ? fastify : undefined;
}
