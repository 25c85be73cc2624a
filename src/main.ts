import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp } from './app.factory';
import { loadDotEnv } from './config/config.module';
import { installGracefulShutdown } from './lifecycle/graceful-shutdown';
import { LifecycleService } from './lifecycle/lifecycle.service';

/**
 * `npm start`: the service on its configuration, or on its embedded defaults when nothing is set.
 * KVCHAT_ROLE picks what this process runs (`all`, `api`, `worker`); SIGTERM drains, then closes.
 */
async function main(): Promise<void> {
  loadDotEnv();
  const running = await createApp();
  installGracefulShutdown(running.app, (error) => {
    if (error)
      process.stderr.write(
        `kvchat: error while closing: ${error instanceof Error ? error.message : String(error as string)}\n`,
      );
    process.exit(error ? 1 : 0);
  });
  const role = running.app.get(LifecycleService).role;
  new Logger('kvchat').log(
    role === 'worker'
      ? `kvchat worker taking jobs; /health and /metrics on ${running.url}`
      : `kvchat ${role === 'api' ? 'api (jobs go to workers) ' : ''}listening on ${running.url} — API docs at ${running.url}/docs`,
  );
}

main().catch((e: unknown) => {
  // Boot errors (configuration, Redis, database) name what is wrong; print them plainly and stop.
  process.stderr.write(`kvchat failed to start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
