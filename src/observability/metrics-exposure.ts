import { createHash, timingSafeEqual } from 'node:crypto';
import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import Fastify, { type FastifyInstance } from 'fastify';
import { AppConfig } from '../config/app.config';
import { MetricsConfig } from '../config/metrics.config';
import { MetricsService } from './metrics.service';

/** Where `/metrics` is served: not at all, on the API port, or on METRICS_PORT. */
export type MetricsPlacement = 'off' | 'api' | 'own-port';

/**
 * Where `/metrics` is served. METRICS_ENABLED unset = on in development and test, and in production
 * only with METRICS_PORT or METRICS_BEARER_TOKEN (a scrape endpoint open to anyone who reaches the API
 * port lists every route, tenant-labelled counters and engine replicas).
 */
export function metricsPlacement(app: AppConfig, metrics: MetricsConfig): MetricsPlacement {
  const enabled =
    metrics.METRICS_ENABLED ??
    (app.NODE_ENV !== 'production' ||
      metrics.METRICS_PORT !== undefined ||
      metrics.METRICS_BEARER_TOKEN !== undefined);
  if (!enabled) return 'off';
  return metrics.METRICS_PORT === undefined ? 'api' : 'own-port';
}

/** True when `authorization` carries METRICS_BEARER_TOKEN (or no token is configured). Constant time. */
export function metricsAuthorized(metrics: MetricsConfig, authorization: string | undefined): boolean {
  const token = metrics.METRICS_BEARER_TOKEN;
  if (token === undefined) return true;
  const given = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1] ?? '';
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(token));
}

/**
 * Serves `GET /metrics` on its own port (METRICS_PORT, same HOST) when configured, so the API port
 * never exposes it; a scraper reaches it on the pod network only. Token-protected like the API route
 * when METRICS_BEARER_TOKEN is set.
 */
@Injectable()
export class MetricsPortServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Metrics');
  private server?: FastifyInstance;
  /** Base URL of the metrics server once listening (`http://127.0.0.1:9464`), else undefined. */
  url?: string;

  constructor(
    private readonly app: AppConfig,
    private readonly config: MetricsConfig,
    private readonly metrics: MetricsService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (metricsPlacement(this.app, this.config) !== 'own-port') return;
    const server = Fastify({ logger: false });
    server.get('/metrics', async (request, reply) => {
      if (!metricsAuthorized(this.config, request.headers.authorization)) {
        return reply.code(401).header('www-authenticate', 'Bearer realm="metrics"').send('');
      }
      const { contentType, body } = await this.metrics.scrape();
      return reply.header('content-type', contentType).send(body);
    });
    const address = await server.listen({ port: this.config.METRICS_PORT ?? 0, host: this.app.HOST });
    this.server = server;
    this.url = address.replace('0.0.0.0', '127.0.0.1');
    this.logger.log(`/metrics served on ${this.url} (not on the API port)`);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.server?.close();
  }
}
