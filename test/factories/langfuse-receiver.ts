import Fastify, { type FastifyInstance } from 'fastify';

/** One event of a Langfuse ingestion batch (`POST /api/public/ingestion`). */
export interface IngestionEvent {
  id: string;
  type: string;
  timestamp: string;
  body: Record<string, any>;
}

/** A local stand-in for the Langfuse host: records every ingestion batch the SDK sends. */
export interface LangfuseReceiver {
  /** Base URL to use as LANGFUSE_BASEURL. */
  url: string;
  /** Every event received, in arrival order. */
  events: IngestionEvent[];
  /** The Authorization header of each batch. */
  authorizations: string[];
  /** Events of one trace: the trace's own events and its observations'. */
  eventsOf(traceId: string): IngestionEvent[];
  /** Resolves once `predicate` holds for the events received, or rejects after `timeoutMs`. */
  waitFor(predicate: (events: IngestionEvent[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts a receiver on a free loopback port. It answers like Langfuse (207 with one success per
 * event), or, with `respond: 'hang'`, accepts batches and never answers (a stuck Langfuse).
 */
export async function startLangfuseReceiver(
  options: { respond?: 'ok' | 'hang' } = {},
): Promise<LangfuseReceiver> {
  const events: IngestionEvent[] = [];
  const authorizations: string[] = [];
  const app: FastifyInstance = Fastify({ bodyLimit: 50 * 1024 * 1024 });
  app.post('/api/public/ingestion', async (request, reply) => {
    const body = request.body as { batch: IngestionEvent[] };
    authorizations.push(String(request.headers.authorization));
    events.push(...body.batch);
    if (options.respond === 'hang') return new Promise(() => undefined);
    return reply
      .status(207)
      .send({ successes: body.batch.map((e) => ({ id: e.id, status: 201 })), errors: [] });
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    events,
    authorizations,
    eventsOf: (traceId) => events.filter((e) => e.body.id === traceId || e.body.traceId === traceId),
    waitFor: async (predicate, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(events)) {
        if (Date.now() > deadline)
          throw new Error(`Langfuse receiver: condition not met within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: async () => {
      app.server.closeAllConnections();
      await app.close();
    },
  };
}
