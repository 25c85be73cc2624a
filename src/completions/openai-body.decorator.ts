import { createParamDecorator, type ExecutionContext, ValidationPipe } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';

/**
 * The request body of an OpenAI-compatible route, validated against its DTO without rejecting fields
 * the DTO does not declare: the OpenAI API grows fields and providers add their own, and kvchat passes
 * those to the engine (the global pipe's `forbidNonWhitelisted` would answer 400). Declared fields are
 * validated as everywhere else (a 400 names the field). Custom parameter decorators are skipped by the
 * global ValidationPipe (`validateCustomDecorators` is off), so this pipe is the only one that runs.
 */
export const OpenAiBody = (): ParameterDecorator =>
  createParamDecorator(
    (_data: unknown, ctx: ExecutionContext) => ctx.switchToHttp().getRequest<FastifyRequest>().body,
  )(new ValidationPipe({ transform: true, whitelist: false, validateCustomDecorators: true }));
