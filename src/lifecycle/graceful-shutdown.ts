import { type INestApplicationContext, Logger } from '@nestjs/common';
import { LifecycleService } from './lifecycle.service';

/** Signals that start a graceful shutdown (Kubernetes and `docker stop` send SIGTERM; Ctrl-C SIGINT). */
const SHUTDOWN_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/**
 * Graceful shutdown for a long-running process: on the first SIGTERM/SIGINT the drain begins
 * (readiness 503), in-flight work gets up to SHUTDOWN_DRAIN_MS to finish, then the app closes
 * (HTTP server, queues, database, Redis) and `onClosed` runs. A second signal closes at once.
 * Use it instead of Nest's `enableShutdownHooks()`, which closes on the first signal without a drain.
 * @returns a function that removes the signal handlers
 */
export function installGracefulShutdown(
  app: INestApplicationContext,
  onClosed: (error?: unknown) => void,
): () => void {
  const logger = new Logger('Shutdown');
  const lifecycle = app.get(LifecycleService);
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= app.close().then(
      () => onClosed(),
      (e: unknown) => onClosed(e),
    ));
  const onSignal = (signal: NodeJS.Signals): void => {
    if (lifecycle.draining) {
      logger.warn(`${signal} again: closing without waiting for the drain`);
      void close();
      return;
    }
    lifecycle.beginDrain(signal);
    void lifecycle.settled().then((outcome) => {
      logger.log(
        outcome === 'idle'
          ? 'drained: nothing in flight, closing'
          : `drain time ran out with ${lifecycle.inFlightCount} in flight, closing`,
      );
      return close();
    });
  };
  for (const s of SHUTDOWN_SIGNALS) process.on(s, onSignal);
  return () => {
    for (const s of SHUTDOWN_SIGNALS) process.off(s, onSignal);
  };
}
