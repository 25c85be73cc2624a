import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerGuard } from '@nestjs/throttler';
import { ApiKeyGuard } from './auth.guard';
import { ApiKeyService } from './api-key.service';
import { RateLimitModule } from './rate-limit.module';
import { TenantSaltService } from './tenant-salt.service';

/** API keys, tenants, the global guard, per-key rate limits and the per-tenant engine cache salt. */
@Module({
  imports: [RateLimitModule],
  providers: [
    ApiKeyService,
    TenantSaltService,
    // Global guards run in this order: resolve the key first, then count it against its rate limit.
    { provide: APP_GUARD, useClass: ApiKeyGuard },
    { provide: APP_GUARD, useClass: ThrottlerGuard },
  ],
  exports: [ApiKeyService, TenantSaltService],
})
export class AuthModule {}
