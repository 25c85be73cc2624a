import { Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { MetricsService } from './metrics.service';
import { fastifyOf } from '../common/fastify-instance';

/**
 * Times every HTTP request with a Fastify `onRequest` hook and records it when the response
 * closes, so 401s from the guard, 404s, validation errors and hijacked SSE streams are counted
 * too (a Nest interceptor sees none of those). The route label is Fastify's route pattern.
 */
@Injectable()
export class HttpMetricsHook implements OnModuleInit {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly metrics: MetricsService,
  ) {}

  onModuleInit(): void {
    const fastify = fastifyOf(this.adapterHost);
    if (!fastify) return; // no HTTP server (CLI, module tests)
    fastify.addHook('onRequest', (request, reply, done) => {
      const started = performance.now();
      reply.raw.once('close', () => {
        this.metrics.recordHttpRequest(
          request.method,
          request.routeOptions.url,
          reply.raw.statusCode,
          (performance.now() - started) / 1000,
        );
      });
      done();
    });
  }
}
