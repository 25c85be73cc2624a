import type { IncomingMessage } from 'node:http';
import multipart from '@fastify/multipart';
import { type INestApplication, type ModuleMetadata, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { frameworkErrorOptions, hardenHttp } from './common/http-hardening';
import { ProblemFilter } from './common/problem.filter';
import { STRICT_BODY } from './common/schema-body.decorator';
import { AppConfig } from './config/app.config';
import type { Env } from './config/config.loader';
import { EmbeddingsService } from './inference/embeddings.service';
import { LifecycleService } from './lifecycle/lifecycle.service';
import { requestIdFor } from './observability/logging.module';

/** A started kvchat instance. */
export interface RunningApp {
  app: NestFastifyApplication;
  /** Base URL, e.g. `http://127.0.0.1:3000`. */
  url: string;
  close(): Promise<void>;
}

/** Builds the OpenAPI document served at /docs and /docs-json. */
export function setupSwagger(app: INestApplication): void {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('kvchat')
      .setDescription(
        'Multi-turn LLM chat that keeps every cache layer warm: the engine KV prefix cache (vLLM + LMCache), ' +
          'a response cache (exact and semantic) and persisted conversations behind an agent router. ' +
          'Errors are RFC 9457 problem details (`application/problem+json`) with a request id.',
      )
      .setVersion('1')
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'API key from `npm run keys:create`' })
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
}

/**
 * Creates, configures and starts the app: Fastify (bounded JSON bodies, security headers, CORS when
 * configured, framework errors as problems), global validation, the problem filter and Swagger
 * (unless DOCS_ENABLED=false, or in production unless DOCS_ENABLED=true; never in a `worker`, which
 * serves only /health and /metrics). Signals are the caller's: `main.ts` installs the graceful
 * shutdown (src/lifecycle/graceful-shutdown.ts). A local embedding model is loaded before it listens.
 * @param env overrides of process.env
 * @param options.port overrides PORT (0 = any free port)
 * @param options.imports extra modules (AppModule.forRoot's `extra`)
 */
export async function createApp(
  env: Env = {},
  options: { port?: number; host?: string; imports?: ModuleMetadata['imports'] } = {},
): Promise<RunningApp> {
  const adapter = new FastifyAdapter({
    bodyLimit: Number(env.BODY_LIMIT_BYTES ?? process.env.BODY_LIMIT_BYTES ?? 1_048_576),
    genReqId: (req: IncomingMessage) => requestIdFor(req),
    requestIdHeader: false,
    // close() runs after the drain (src/lifecycle): whatever is still open then is cut, so a stuck
    // stream cannot hold the process past the orchestrator's grace period.
    forceCloseConnections: true,
    ...frameworkErrorOptions(),
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(env, options.imports),
    adapter,
    {
      bufferLogs: true,
      abortOnError: false,
      // hardenHttp registers the one JSON body parser (bounded, checked before validation).
      bodyParser: false,
    },
  );
  app.useLogger(app.get(Logger));
  const config = app.get(AppConfig);
  await hardenHttp(app, { corsOrigins: config.CORS_ORIGINS, bodyLimit: config.BODY_LIMIT_BYTES });
  // multipart/form-data document uploads; each route passes its own limits to request.parts(). The cast:
  // @nestjs/platform-fastify pins its own fastify (5.11), whose instance type differs from the root one's.
  await app.register(multipart as unknown as Parameters<typeof app.register>[0]);
  app.useGlobalPipes(new ValidationPipe(STRICT_BODY));
  app.useGlobalFilters(new ProblemFilter());
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onSend', (request, reply, payload, done) => {
      void reply.header('x-request-id', request.id);
      done(null, payload);
    });
  if (app.get(LifecycleService).servesApi && (config.DOCS_ENABLED ?? config.NODE_ENV !== 'production'))
    setupSwagger(app);
  // The local embedding model (router, semantic cache) loads before the server listens: the first turns
  // after a start or a crash would otherwise wait ~0.5-1.5 s for it (bench:chaos, sigkill-load).
  await app.get(EmbeddingsService, { strict: false }).preload();
  const port = options.port ?? config.PORT;
  const host = options.host ?? config.HOST;
  // Node's keep-alive idle timeout and the accept queue: docs/scaling.md (HTTP_KEEP_ALIVE_TIMEOUT_MS, HTTP_LISTEN_BACKLOG).
  app.getHttpServer().keepAliveTimeout = config.HTTP_KEEP_ALIVE_TIMEOUT_MS;
  await app.listen({ port, host, backlog: config.HTTP_LISTEN_BACKLOG });
  const address = app.getHttpServer().address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${actualPort}`;
  return { app, url, close: () => app.close() };
}
