import { Module } from '@nestjs/common';
import { APP_GUARD, DiscoveryModule } from '@nestjs/core';
import { AccessPolicy } from './access-policy.service';
import { ApiKeyHook } from './api-key.hook';
import { ApiKeyGuard } from './auth.guard';
import { ApiKeyService } from './api-key.service';
import { RateLimitService } from './limits/rate-limit.service';
import { TenantSaltService } from './tenant-salt.service';
import { TenantService } from './tenant.service';

/**
 * API keys (scopes, model allow-lists, expiry, rotation), tenants, the onRequest key hook and the
 * global guard, rpm/tpm limits and budgets per key, tenant and client IP, and the per-tenant engine
 * cache salt.
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    ApiKeyService,
    TenantService,
    TenantSaltService,
    RateLimitService,
    AccessPolicy,
    ApiKeyHook,
    { provide: APP_GUARD, useClass: ApiKeyGuard },
  ],
  exports: [ApiKeyService, TenantService, TenantSaltService, RateLimitService, AccessPolicy],
})
export class AuthModule {}
