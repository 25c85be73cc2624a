import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import type { AuthContext } from '../auth/api-key.service';
import { Forbidden } from '../auth/auth.errors';
import { CacheStatsSection, type CacheStatsScope, type CacheStatsSource } from './cache-stats.types';

/** The figures of `GET /v1/cache/stats`. */
export interface CacheStatsReport {
  scope: CacheStatsScope;
  generatedAt: string;
  /** One section per cache layer that has figures for this scope. */
  layers: Record<string, unknown>;
}

/**
 * Collects every cache layer's statistics (the sources marked `@CacheStatsSection()`) for one scope:
 * the caller's tenant (optionally one conversation), or every tenant for an admin key.
 */
@Injectable()
export class CacheStatsService implements OnModuleInit {
  private sources: CacheStatsSource[] = [];

  constructor(private readonly discovery: DiscoveryService) {}

  onModuleInit(): void {
    this.sources = this.discovery
      .getProviders({ metadataKey: CacheStatsSection.KEY })
      .map((wrapper) => wrapper.instance as CacheStatsSource)
      .filter((instance) => instance && typeof instance.collect === 'function')
      .sort((a, b) => a.section.localeCompare(b.section));
  }

  /**
   * @throws Forbidden for `global` without an admin key; ConversationNotFound for another tenant's conversation
   */
  async collect(
    auth: AuthContext,
    options: { global?: boolean; conversationId?: string },
  ): Promise<CacheStatsReport> {
    if (options.global && !auth.admin) throw new Forbidden('Statistics across tenants need an admin key.');
    const scope: CacheStatsScope = {
      kind: options.global ? 'global' : 'tenant',
      tenantId: auth.tenantId,
      ...(options.conversationId ? { conversationId: options.conversationId } : {}),
    };
    const sections = await Promise.all(
      this.sources.map(async (s) => [s.section, await s.collect(scope)] as const),
    );
    const layers: Record<string, unknown> = {};
    for (const [section, figures] of sections) if (figures !== undefined) layers[section] = figures;
    return { scope, generatedAt: new Date().toISOString(), layers };
  }
}
