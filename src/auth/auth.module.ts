import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ApiKeyGuard } from './auth.guard';
import { ApiKeyService } from './api-key.service';
import { TenantSaltService } from './tenant-salt.service';

/** API keys, tenants, the global guard and the per-tenant engine cache salt. */
@Module({
  providers: [ApiKeyService, TenantSaltService, { provide: APP_GUARD, useClass: ApiKeyGuard }],
  exports: [ApiKeyService, TenantSaltService],
})
export class AuthModule {}
