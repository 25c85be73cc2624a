import { DiscoveryService } from '@nestjs/core';

/** Whose figures `GET /v1/cache/stats` reports. */
export interface CacheStatsScope {
  /** `tenant`: the caller's tenant only; `global`: every tenant (admin keys only). */
  kind: 'tenant' | 'global';
  /** The caller's tenant. */
  tenantId: string;
  /** Restrict to one conversation of the caller's tenant. */
  conversationId?: string;
}

/**
 * One cache layer's section of `GET /v1/cache/stats` (`layers.<section>`). A layer adds its figures
 * by providing a class that implements this and carries `@CacheStatsSection()`; the stats service
 * discovers it, so adding a layer touches no other file.
 */
export interface CacheStatsSource {
  /** Key of the section in `layers` (`prefix`, `engine`, `response`, ...). */
  readonly section: string;
  /**
   * The section's figures for `scope`, or undefined when the layer has nothing to say for it
   * (e.g. engine-wide counters in a tenant scope).
   */
  collect(scope: CacheStatsScope): Promise<unknown>;
}

/** Marks a provider as a CacheStatsSource to include in `GET /v1/cache/stats`. */
export const CacheStatsSection = DiscoveryService.createDecorator<void>();
