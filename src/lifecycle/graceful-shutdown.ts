import { type INestApplicationContext, Logger } from '@nestjs/common';
import { LifecycleService } from './lifecycle.service';

/** Signals that start a graceful shutdown (Kubernetes and `docker stop` send SIGTERM; Ctrl-C SIGINT). */
const SHUTDOWN_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/**
 * After the drain time ran out, how long the aborted work gets to record its failure (a turn stores its
 * user message `failed`, reason `shutdown`) and answer before the app closes, ms. What is still running
 * then stays recorded in flight (Redis), and the sweeper stores it once its deadline passes.
 */
export const ABORT_GRACE_MS = 3000;

/**
 * Graceful shutdown for a long-running process: on the first SIGTERM/SIGINT the drain begins
 * (readiness 503, new API requests 503), in-flight work gets up to SHUTDOWN_DRAIN_MS to finish, then
 * what is left is aborted (`drainExpired`) and gets ABORT_GRACE_MS to record its failure, then the app closes
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
    void lifecycle.settled().then(async (outcome) => {
      if (outcome === 'idle') logger.log('drained: nothing in flight, closing');
      else {
        // drainExpired has aborted what is still running: let it record its failure, briefly.
        logger.warn(`drain time ran out with ${lifecycle.inFlightCount} in flight: aborted them`);
        const idle = await lifecycle.idleWithin(ABORT_GRACE_MS);
        logger.log(
          idle
            ? 'aborted work recorded, closing'
            : `${lifecycle.inFlightCount} still in flight after ${ABORT_GRACE_MS} ms, closing (the sweeper stores their turns)`,
        );
      }
      return close();
    });
  };
  for (const s of SHUTDOWN_SIGNALS) process.on(s, onSignal);
  return () => {
    for (const s of SHUTDOWN_SIGNALS) process.off(s, onSignal);
  };
}
