import { Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { ResponseCacheAdmin } from '../caching/response-cache-admin.service';
import { DocumentChanges } from '../knowledge/document-changes';

/**
 * Citation-linked cache invalidation: when a knowledge document gets a new version or is deleted,
 * the cached answers that cited it are purged (with their question vectors); other entries stay.
 * Lives here because it joins two modules of the layer below (knowledge publishes the change,
 * caching purges). Serving is safe before the purge too: the versions cited are in each entry's scope.
 */
@Injectable()
export class KnowledgeCacheInvalidation implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('Knowledge');
  private unsubscribe?: () => void;

  constructor(
    private readonly changes: DocumentChanges,
    private readonly cache: ResponseCacheAdmin,
  ) {}

  onModuleInit(): void {
    this.unsubscribe = this.changes.subscribe(async ({ tenantId, documentId, version }) => {
      const purged = await this.cache.invalidateDocument(tenantId, documentId);
      if (purged > 0) {
        this.logger.log(
          `document ${documentId} ${version === null ? 'deleted' : `now v${version}`}: ${purged} cached answers purged`,
        );
      }
    });
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
  }
}
