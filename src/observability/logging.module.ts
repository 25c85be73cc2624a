import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { LoggerModule } from 'nestjs-pino';
import { isProbePath } from '../common/probe-paths';
import { AppConfig } from '../config/app.config';
import { errorSerializer } from './log-redaction';
import { TenantLogInterceptor } from './tenant-log.interceptor';

/** Request id: the caller's `x-request-id` when it is sane, else a new UUID. */
export function requestIdFor(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
}

/**
 * True when the connection closed before the response was complete: the client went away (a closed
 * tab, a cancelled stream). pino-http logs such a request on the response's `close` without `finish`.
 */
function clientClosed(res: ServerResponse): boolean {
  return !res.writableEnded;
}

/** nginx's status for "client closed request": what the access line reports for a client that went away. */
export const CLIENT_CLOSED_REQUEST = 499;

/**
 * Structured logs (pino through nestjs-pino): JSON in production, pretty in development, the
 * request id (`requestId`) on every line of a request, the tenant id (`tenantId`) once the guard
 * resolved it, the API key and cookies redacted, no message content (unless LOG_MESSAGE_CONTENT) — nor
 * the SQL and values of a database error (see `errorSerializer`) — and successful probes and scrapes
 * not logged (unless LOG_PROBE_REQUESTS).
 * JSON lines go to `process.stdout`.
 */
@Module({
  imports: [
    LoggerModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => {
        const pretty =
          (config.LOG_FORMAT ?? (config.NODE_ENV === 'development' ? 'pretty' : 'json')) === 'pretty';
        const options = {
          level: config.LOG_LEVEL,
          // Fastify already assigned the id (x-request-id or a UUID); middie copies it to the raw request.
          genReqId: (req: IncomingMessage & { id?: unknown }) =>
            typeof req.id === 'string' && req.id ? req.id : requestIdFor(req),
          // Lines logged during a request carry only `requestId` (and `tenantId`, see
          // TenantLogInterceptor); the `request completed` line carries the whole request.
          quietReqLogger: true,
          customAttributeKeys: { reqId: 'requestId' },
          // The access line of a 5xx is an error (the cause is logged once by ProblemFilter); 4xx are the
          // client's, and so is a disconnect: a 499 at info, never an error line.
          customLogLevel: (_req: IncomingMessage, res: ServerResponse, err?: Error) =>
            clientClosed(res)
              ? ('info' as const)
              : err || res.statusCode >= 500
                ? ('error' as const)
                : ('info' as const),
          redact: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]'],
          // Database errors carry SQL with the user's values: dropped unless LOG_MESSAGE_CONTENT.
          serializers: {
            err: errorSerializer(config.LOG_MESSAGE_CONTENT),
            // pino-http wraps this around its standard response serializer (`raw` is the ServerResponse).
            res: (res: { statusCode: number | null; raw: ServerResponse }) =>
              clientClosed(res.raw) ? { ...res, statusCode: CLIENT_CLOSED_REQUEST } : res,
          },
          // Probes and scrapes are not access-logged unless LOG_PROBE_REQUESTS (a failing readiness
          // check is still logged, by Terminus).
          // The middleware sees `url` with the route's mount path stripped; `originalUrl` is the full one.
          autoLogging: config.LOG_PROBE_REQUESTS
            ? true
            : {
                ignore: (req: IncomingMessage & { originalUrl?: string }) =>
                  isProbePath(req.originalUrl ?? req.url ?? ''),
              },
        };
        return {
          assignResponse: true,
          pinoHttp: pretty
            ? {
                ...options,
                transport: { target: 'pino-pretty', options: { singleLine: true, colorize: true } },
              }
            : [options, process.stdout],
        };
      },
    }),
  ],
  providers: [{ provide: APP_INTERCEPTOR, useClass: TenantLogInterceptor }],
})
export class LoggingModule {}
