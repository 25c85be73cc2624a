import { Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { RouteConfig } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { problemHeaders, toProblem } from '../common/problem.filter';
import { TurnAdmission } from './turn-admission.service';
import { fastifyOf } from '../common/fastify-instance';

/** Fastify route config member marking a route as a turn (admission control applies). */
export const ROUTE_ADMISSION = 'kvchatAdmission';

/**
 * Marks a controller route as a turn: TurnAdmissionHook holds it to TURNS_MAX_IN_FLIGHT and
 * TURNS_MAX_QUEUED before anything else of the request runs.
 */
export const AdmittedAsTurn = (): MethodDecorator => RouteConfig({ [ROUTE_ADMISSION]: 'turn' });

/**
 * Admission control at the edge, as a Fastify `onRequest` hook on the routes marked `@AdmittedAsTurn()`:
 * before the body is parsed, the turn takes a slot of TurnAdmission (waiting in its queue if need be) and
 * holds it until its response closes. Refused turns get a 503 `Overloaded` problem with `Retry-After`
 * without any further work; a turn whose client disconnects while queued is dropped before it starts.
 */
@Injectable()
export class TurnAdmissionHook implements OnModuleInit {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly admission: TurnAdmission,
  ) {}

  onModuleInit(): void {
    const fastify = fastifyOf(this.adapterHost);
    if (!fastify) return; // no HTTP server (CLI, module tests)
    fastify.addHook('onRequest', (request, reply) => this.onRequest(request, reply));
  }

  private async onRequest(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const config = request.routeOptions.config as unknown as Record<string, unknown> | undefined;
    if (config?.[ROUTE_ADMISSION] !== 'turn') return undefined;
    // 'close' on the response fires when it has been sent, or when the client went away before that.
    const clientGone = new AbortController();
    const onClose = (): void => clientGone.abort();
    reply.raw.once('close', onClose);
    try {
      const admission = await this.admission.admit(clientGone.signal);
      if (!admission.admitted) {
        // Nobody is listening: answer nothing, run nothing.
        reply.hijack();
        return reply;
      }
      reply.raw.off('close', onClose);
      if (reply.raw.destroyed) admission.release();
      else reply.raw.once('close', admission.release);
      return undefined;
    } catch (e) {
      reply.raw.off('close', onClose);
      const problem = toProblem(e, request.url, String(request.id));
      return reply
        .status(problem.status)
        .headers(problemHeaders(problem))
        .header('content-type', 'application/problem+json')
        .send(problem);
    }
  }
}
