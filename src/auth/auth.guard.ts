import {
  type CanActivate,
  createParamDecorator,
  type ExecutionContext,
  Injectable,
  SetMetadata,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { IS_PUBLIC } from '../common/public.decorator';
import { AccessPolicy } from './access-policy.service';
import { type AuthContext, ApiKeyService } from './api-key.service';
import { Unauthorized } from './auth.errors';
import { RateLimitService } from './limits/rate-limit.service';
import type { Scope } from './scopes';

export const REQUIRED_SCOPES = 'kvchat:scopes';

/**
 * The scopes a controller or route needs (a key must hold all of them; class and method lists add
 * up). Without one, a 403 `ScopeMissing` names what is missing.
 */
export const RequireScopes = (...scopes: Scope[]): MethodDecorator & ClassDecorator =>
  SetMetadata(REQUIRED_SCOPES, scopes);

/** The request, once its key has been resolved. */
export type AuthenticatedRequest = FastifyRequest & { auth: AuthContext };

/** Injects the caller's AuthContext (tenant, key, scopes, limits) into a handler parameter. */
export const Auth = createParamDecorator((_: unknown, ctx: ExecutionContext): AuthContext => {
  return ctx.switchToHttp().getRequest<AuthenticatedRequest>().auth;
});

/** The key of an `Authorization: Bearer <key>` header, or null. */
export function bearerToken(header: unknown): string | null {
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match ? match[1] : null;
}

/**
 * Global guard: every route needs an API key unless marked @Public(), and the scopes it names with
 * @RequireScopes(). The key is normally resolved (and its rate limits applied) before the body is
 * read, by ApiKeyHook; the guard does it itself only for a request the hook did not see.
 * @throws Unauthorized (401), ScopeMissing (403), RateLimitExceeded / BudgetExceeded (429)
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly keys: ApiKeyService,
    private readonly limits: RateLimitService,
    private readonly access: AccessPolicy,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, targets)) return true;
    const request = context.switchToHttp().getRequest<Partial<AuthenticatedRequest> & FastifyRequest>();
    if (!request.auth) {
      const key = bearerToken(request.headers.authorization);
      if (!key) throw new Unauthorized('Send the API key as `Authorization: Bearer <key>`.');
      const auth = await this.keys.verify(key);
      await this.limits.admit(auth);
      request.auth = auth;
    }
    const scopes = this.reflector.getAllAndMerge<Scope[]>(REQUIRED_SCOPES, targets) ?? [];
    this.access.assertScopes(request.auth, scopes);
    return true;
  }
}
