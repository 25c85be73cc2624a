import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { AppConfig } from '../config/app.config';

/** Request id: the caller's `x-request-id` when it is sane, else a new UUID. */
export function requestIdFor(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
}

/**
 * Structured logs (pino through nestjs-pino): JSON in production, pretty in development, the
 * request id on every line, the API key and cookies redacted, no message content.
 */
@Module({
  imports: [
    LoggerModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => {
        const pretty = (config.LOG_FORMAT ?? (config.NODE_ENV === 'development' ? 'pretty' : 'json')) === 'pretty';
        return {
          pinoHttp: {
            level: config.LOG_LEVEL,
            genReqId: (req: IncomingMessage & { id?: unknown }) =>
              typeof req.id === 'string' && req.id ? req.id : requestIdFor(req),
            redact: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]'],
            customProps: (req: IncomingMessage & { auth?: { tenantId?: string } }) => ({
              tenantId: req.auth?.tenantId,
            }),
            autoLogging: { ignore: (req: IncomingMessage) => (req.url ?? '').startsWith('/health') },
            ...(pretty ? { transport: { target: 'pino-pretty', options: { singleLine: true, colorize: true } } } : {}),
          },
        };
      },
    }),
  ],
})
export class LoggingModule {}
