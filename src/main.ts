import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp } from './app.factory';
import { loadDotEnv } from './config/config.module';

/** `npm start`: the service on its configuration, or on its embedded defaults when nothing is set. */
async function main(): Promise<void> {
  loadDotEnv();
  const running = await createApp();
  new Logger('kvchat').log(`kvchat listening on ${running.url} — API docs at ${running.url}/docs`);
}

main().catch((e: unknown) => {
  // Boot errors (configuration, Redis, database) name what is wrong; print them plainly and stop.
  process.stderr.write(`kvchat failed to start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
