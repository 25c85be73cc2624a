import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import type { Observable } from 'rxjs';

/**
 * Adds `tenantId` to every later log line of a request (and to its `request completed` line) once
 * the API-key guard has resolved the tenant. Interceptors run after guards, so the tenant is known
 * here; pino-http's own hooks run before the guard and see none.
 */
@Injectable()
export class TenantLogInterceptor implements NestInterceptor {
  constructor(private readonly logger: PinoLogger) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() === 'http') {
      const tenantId = context.switchToHttp().getRequest<{ auth?: { tenantId?: string } }>().auth?.tenantId;
      if (tenantId) {
        try {
          this.logger.assign({ tenantId });
        } catch {
          // Outside a request's logging scope (no pino-http middleware ran): nothing to add to.
        }
      }
    }
    return next.handle();
  }
}
