import {
  type ArgumentMetadata,
  createParamDecorator,
  type ExecutionContext,
  type PipeTransform,
  ValidationPipe,
} from '@nestjs/common';
import type { FastifyRequest } from 'fastify';

/**
 * Validates an OpenAI-compatible body against its DTO without rejecting undeclared fields; a body that
 * `accepts` (a precompiled JSON schema of a subset of the DTO) is taken as sent, without class-validator.
 */
class OpenAiBodyPipe implements PipeTransform {
  private readonly pipe = new ValidationPipe({
    transform: true,
    whitelist: false,
    validateCustomDecorators: true,
  });

  constructor(private readonly accepts?: (body: unknown) => boolean) {}

  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    if (this.accepts?.(value)) return value;
    return this.pipe.transform(value, metadata);
  }
}

/**
 * The request body of an OpenAI-compatible route, validated against its DTO without rejecting fields
 * the DTO does not declare: the OpenAI API grows fields and providers add their own, and kvchat passes
 * those to the engine (the global pipe's `forbidNonWhitelisted` would answer 400). Declared fields are
 * validated as everywhere else (a 400 names the field). Custom parameter decorators are skipped by the
 * global ValidationPipe (`validateCustomDecorators` is off), so this pipe is the only one that runs.
 * @param accepts a check of a subset of what the DTO accepts (a compiled JSON schema): a body it accepts is
 *   passed on as parsed (a plain object with the DTO's fields), without class-validator and class-transformer
 */
export const OpenAiBody = (accepts?: (body: unknown) => boolean): ParameterDecorator =>
  createParamDecorator(
    (_data: unknown, ctx: ExecutionContext) => ctx.switchToHttp().getRequest<FastifyRequest>().body,
  )(new OpenAiBodyPipe(accepts));
