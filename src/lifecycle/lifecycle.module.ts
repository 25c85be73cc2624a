import { Global, Module } from '@nestjs/common';
import { HttpLifecycleHook } from './http-lifecycle.hook';
import { LifecycleService } from './lifecycle.service';

/**
 * The process's role (KVCHAT_ROLE) and drain state (LifecycleService), global so that turn code,
 * health checks and queue processors can consult it; the HTTP hook that applies both to requests.
 */
@Global()
@Module({
  providers: [LifecycleService, HttpLifecycleHook],
  exports: [LifecycleService],
})
export class LifecycleModule {}
