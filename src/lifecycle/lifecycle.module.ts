import { Global, Module } from '@nestjs/common';
import { HttpLifecycleHook } from './http-lifecycle.hook';
import { LifecycleService } from './lifecycle.service';
import { TurnAdmissionHook } from './turn-admission.hook';
import { TurnAdmission } from './turn-admission.service';

/**
 * The process's role (KVCHAT_ROLE) and drain state (LifecycleService), global so that turn code,
 * health checks and queue processors can consult it; the HTTP hook that applies both to requests;
 * admission control of turns (TurnAdmission, its hook on routes marked `@AdmittedAsTurn()`).
 */
@Global()
@Module({
  providers: [LifecycleService, HttpLifecycleHook, TurnAdmission, TurnAdmissionHook],
  exports: [LifecycleService, TurnAdmission],
})
export class LifecycleModule {}
