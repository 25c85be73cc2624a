import { Inject, Injectable, Logger } from '@nestjs/common';
import type { AuthContext } from '../auth/api-key.service';
import { Forbidden } from '../auth/auth.errors';
import { InvalidRequest } from '../common/domain-error';
import { type ResponseCacheCounts, ResponseCacheStats } from './response-cache.stats';
import { RESPONSE_CACHE_STORE, type ResponseCacheStore } from './response-cache.store';
import { SemanticIndex, type SemanticStatus } from './semantic-index';
import { VECTOR_INDEX, type VectorIndex } from './vector-index';

/** What to invalidate. Fields combine (agent AND template version); none but the tenant = the whole tenant. */
export interface InvalidationRequest {
  /** A tenant id, or `*` for every tenant (admin keys only). Unset = the caller's tenant. */
  tenantId?: string;
  agent?: string;
  templateVersion?: string;
  entryId?: string;
}

/** What an invalidation removed. */
export interface InvalidationResult {
  /** Cached answers removed. */
  deleted: number;
  /** Tenants touched. */
  tenants: number;
}

/** The response cache's part of GET /v1/cache/stats. */
export interface ResponseCacheStatsReport extends ResponseCacheCounts {
  /** Entries held now (one tenant, or all). */
  entries: number;
  semantic: SemanticStatus;
}

/**
 * Administration of the response cache: counters, and invalidation by tenant, agent, template
 * version or entry id. A key acts on its own tenant; another tenant (or `*`) needs an admin key.
 */
@Injectable()
export class ResponseCacheAdmin {
  private readonly logger = new Logger('ResponseCache');

  constructor(
    @Inject(RESPONSE_CACHE_STORE) private readonly store: ResponseCacheStore,
    private readonly stats: ResponseCacheStats,
    private readonly semantic: SemanticIndex,
    @Inject(VECTOR_INDEX) private readonly vectors: VectorIndex,
  ) {}

  /**
   * Removes cached answers.
   * @throws Forbidden when a non-admin key names another tenant or `*`
   */
  async invalidate(auth: AuthContext, request: InvalidationRequest): Promise<InvalidationResult> {
    const tenants = await this.tenantsFor(auth, request.tenantId);
    let deleted = 0;
    for (const tenantId of tenants) {
      let ids: string[];
      if (request.entryId) ids = [request.entryId];
      else
        ids = await this.store.entryIds(tenantId, {
          agent: request.agent,
          templateVersion: request.templateVersion,
        });
      if (ids.length === 0) continue;
      const removed = await this.store.delete(tenantId, ids);
      deleted += removed;
      await this.removeVectors(tenantId, request, ids);
    }
    this.logger.log(
      { tenantId: auth.tenantId, filter: request, deleted },
      `response cache invalidated: ${deleted} answers in ${tenants.length} tenant(s)`,
    );
    return { deleted, tenants: tenants.length };
  }

  /**
   * Purges a tenant's cached answers that cited a knowledge document (the document changed or was
   * deleted), with their question vectors; entries that did not cite it stay. Called through the
   * knowledge module's document-change hook.
   * @returns how many entries were removed
   * @throws when the store fails (the caller logs it; the version cited, part of each entry's scope,
   *   already keeps those entries from being served)
   */
  async invalidateDocument(tenantId: string, documentId: string): Promise<number> {
    const ids = await this.store.entryIds(tenantId, { document: documentId });
    if (ids.length === 0) return 0;
    const deleted = await this.store.delete(tenantId, ids);
    await this.removeVectors(tenantId, {}, ids, true);
    this.logger.log(
      { tenantId, documentId, deleted },
      `response cache: ${deleted} answers citing document ${documentId} purged`,
    );
    return deleted;
  }

  /** Counters and size for the caller's tenant, another tenant or `*` (admin). @throws Forbidden */
  async report(auth: AuthContext, tenantId?: string): Promise<ResponseCacheStatsReport> {
    const all = tenantId === '*';
    const tenants = await this.tenantsFor(auth, tenantId);
    const counts = all ? await this.stats.forAllTenants() : await this.stats.forTenant(tenants[0]);
    let entries = 0;
    for (const t of tenants) entries += await this.store.size(t);
    return { ...counts, entries, semantic: this.semantic.describe() };
  }

  private async tenantsFor(auth: AuthContext, tenantId: string | undefined): Promise<string[]> {
    if (tenantId === undefined || tenantId === auth.tenantId) return [auth.tenantId];
    if (!auth.admin) throw new Forbidden('Only an admin key may act on another tenant’s cache.');
    if (tenantId === '*') return this.store.tenants();
    if (!/^[0-9a-f-]{36}$/i.test(tenantId))
      throw new InvalidRequest('tenantId must be a tenant id (uuid) or `*`.');
    return [tenantId];
  }

  private async removeVectors(
    tenantId: string,
    request: InvalidationRequest,
    ids: string[],
    byIds = false,
  ): Promise<void> {
    if (!(await this.vectors.availability()).available) return;
    try {
      if (byIds) {
        await this.vectors.deleteEverywhere({ tenantId, ids });
      } else if (request.entryId) {
        await this.vectors.deleteEverywhere({ tenantId, ids: [request.entryId] });
      } else if (request.agent || request.templateVersion) {
        const attributes: Record<string, string> = {};
        if (request.agent) attributes.agent = request.agent;
        if (request.templateVersion) attributes.templateVersion = request.templateVersion;
        await this.vectors.deleteEverywhere({ tenantId, attributes });
      } else {
        await this.vectors.deleteEverywhere({ tenantId });
      }
    } catch (e) {
      // Vectors without an entry are never served (their entry is looked up first) and are dropped when met.
      this.logger.warn(
        `cannot delete vectors of invalidated answers (${ids.length}): ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  }
}
