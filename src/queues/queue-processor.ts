import type { Provider, Type } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { ProcessConfig } from '../config/process.config';

/** What a processor's token resolves to in a process that takes no jobs (`KVCHAT_ROLE=api`). */
export class ProcessorNotRunHere {
  constructor(readonly processor: string) {}
}

/**
 * Registers a Bull processor (`@Processor(queue)` class with `@Process` handlers) so that it runs
 * only in processes that take jobs: `KVCHAT_ROLE=worker` or `all`. In an `api` process the queue is
 * still there to add jobs to, but nothing takes them from it. Every queue adopts it in one line:
 * list `queueProcessor(MyJob)` in the module's providers instead of `MyJob`.
 *
 * ```ts
 * @Module({ imports: [registerQueue(INGESTION_QUEUE)], providers: [queueProcessor(IngestJob)] })
 * ```
 *
 * How: @nestjs/bull's explorer attaches handlers for every provider whose instance is a `@Processor`
 * class. In a job-taking process the factory builds the processor with its dependencies injected
 * (`ModuleRef.create`); elsewhere it yields a `ProcessorNotRunHere`, which the explorer passes over.
 */
export function queueProcessor<T>(processor: Type<T>): Provider {
  return {
    provide: processor,
    inject: [ProcessConfig, ModuleRef],
    useFactory: (config: ProcessConfig, moduleRef: ModuleRef): Promise<T> | ProcessorNotRunHere =>
      config.KVCHAT_ROLE === 'api' ? new ProcessorNotRunHere(processor.name) : moduleRef.create(processor),
  };
}
