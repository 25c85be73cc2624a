import { SchemaBody } from '../common/schema-body.decorator';

/**
 * The request body of an OpenAI-compatible route, validated against its DTO without rejecting fields
 * the DTO does not declare: the OpenAI API grows fields and providers add their own, and kvchat passes
 * those to the engine (the global pipe's `forbidNonWhitelisted` would answer 400). Declared fields are
 * validated as everywhere else (a 400 names the field).
 * @param accepts a check of a subset of what the DTO accepts (a compiled JSON schema): a body it accepts is
 *   passed on as parsed (a plain object with the DTO's fields), without class-validator and class-transformer
 */
export const OpenAiBody = (accepts?: (body: unknown) => boolean): ParameterDecorator =>
  SchemaBody(accepts, { transform: true, whitelist: false });
