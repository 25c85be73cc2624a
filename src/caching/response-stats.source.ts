import { Injectable } from '@nestjs/common';
import { CacheStatsSection, type CacheStatsScope, type CacheStatsSource } from './cache-stats.types';
import type { ResponseCacheStatsReport } from './response-cache-admin.service';
import { ResponseCacheAdmin } from './response-cache-admin.service';

/**
 * `layers.response` of GET /v1/cache/stats: response-cache lookups, hits by type (exact, semantic),
 * misses, guard rejections by guard (false hits prevented), stores, evictions, single-flight waits,
 * entries held and whether semantic lookups are on. Per tenant, or summed over tenants for `global`;
 * not broken down by conversation (each turn carries its own `cache.response`).
 */
@Injectable()
@CacheStatsSection()
export class ResponseStatsSource implements CacheStatsSource {
  readonly section = 'response';

  constructor(private readonly admin: ResponseCacheAdmin) {}

  async collect(scope: CacheStatsScope): Promise<ResponseCacheStatsReport | undefined> {
    if (scope.conversationId) return undefined;
    return this.admin.report(
      { tenantId: scope.tenantId, tenantName: '', keyId: '', admin: scope.kind === 'global' },
      scope.kind === 'global' ? '*' : undefined,
    );
  }
}
