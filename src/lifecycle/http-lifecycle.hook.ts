import {
  Injectable,
  NotFoundException,
  type OnModuleInit,
  ServiceUnavailableException,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { isProbePath } from '../common/probe-paths';
import { toProblem } from '../common/problem.filter';
import { LifecycleService } from './lifecycle.service';
import { fastifyOf } from '../common/fastify-instance';

/**
 * The HTTP side of the process's role and drain, as one Fastify `onRequest` hook:
 * - a `worker` answers only probes and scrapes (`/health/*`, `/metrics`); anything else is a 404
 *   problem naming the role, so a misrouted client learns why;
 * - once the drain has begun (SIGTERM), a new request is refused at once: 503 with `Retry-After: 1` and
 *   `Connection: close`, so the client retries on another replica (readiness is 503 too);
 * - every other request is tracked by LifecycleService until its response closes, so a drain waits
 *   for it (probes are not tracked: a kubelet polling readiness must not hold the drain open).
 */
@Injectable()
export class HttpLifecycleHook implements OnModuleInit {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly lifecycle: LifecycleService,
  ) {}

  onModuleInit(): void {
    const fastify = fastifyOf(this.adapterHost);
    if (!fastify) return; // no HTTP server (CLI, module tests)
    fastify.addHook('onRequest', (request, reply, done) => {
      if (isProbePath(request.url)) return done();
      if (!this.lifecycle.servesApi) {
        const problem = toProblem(
          new NotFoundException(`KVCHAT_ROLE=${this.lifecycle.role} serves only /health and /metrics`),
          request.url,
          request.id,
        );
        void reply.code(404).header('content-type', 'application/problem+json').send(problem);
        return;
      }
      if (this.lifecycle.draining) {
        const problem = toProblem(
          new ServiceUnavailableException('The server is shutting down; retry on another instance.'),
          request.url,
          request.id,
        );
        void reply
          .code(503)
          .header('content-type', 'application/problem+json')
          .header('retry-after', '1')
          .header('connection', 'close')
          .send(problem);
        return;
      }
      reply.raw.once('close', this.lifecycle.track());
      done();
    });
  }
}
