import {
  type CanActivate,
  createParamDecorator,
  type ExecutionContext,
  Injectable,
  SetMetadata,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { type AuthContext, ApiKeyService } from './api-key.service';
import { Unauthorized } from './auth.errors';

const IS_PUBLIC = 'kvchat:public';

/** Marks a controller or route as reachable without an API key (health, metrics). */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC, true);

/** The request, once the guard has resolved its key. */
export type AuthenticatedRequest = FastifyRequest & { auth: AuthContext };

/** Injects the caller's AuthContext (tenant, key, admin flag) into a handler parameter. */
export const Auth = createParamDecorator((_: unknown, ctx: ExecutionContext): AuthContext => {
  return ctx.switchToHttp().getRequest<AuthenticatedRequest>().auth;
});

/**
 * Global guard: every route needs `Authorization: Bearer <key>` unless marked @Public().
 * @throws Unauthorized (401) for a missing, malformed, unknown or revoked key
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly keys: ApiKeyService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const isPublic = this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (isPublic) return true;
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) throw new Unauthorized('Send the API key as `Authorization: Bearer <key>`.');
    request.auth = await this.keys.verify(match[1]);
    return true;
  }
}
