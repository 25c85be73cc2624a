import { Injectable, Logger } from '@nestjs/common';

/** A document whose served content changed: a new version was applied, or it was deleted. */
export interface DocumentChange {
  tenantId: string;
  knowledgeBaseId: string;
  documentId: string;
  /** The version now served; null when the document (or its knowledge base) was deleted. */
  version: number | null;
}

/** Called after a change is committed; a rejection is logged, never propagated to the ingestion. */
export type DocumentChangeListener = (change: DocumentChange) => Promise<unknown>;

/**
 * The knowledge module's document-change hook: ingestion (a new version swapped in) and deletion
 * (of a document or a knowledge base) publish here after their transaction commits, and layers
 * above subscribe (the knowledge agent purges cached answers that cited the document). In-process:
 * the listener runs where the change happened (the worker for ingestions, the API for deletions).
 * A listener that fails leaves nothing stale served: cached answers are also keyed to the versions
 * they cited, so a changed document never matches them again (docs/knowledge.md).
 */
@Injectable()
export class DocumentChanges {
  private readonly logger = new Logger('Knowledge');
  private readonly listeners = new Set<DocumentChangeListener>();

  /** @returns a function that unsubscribes */
  subscribe(listener: DocumentChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Runs every listener on each change, in order; waits for them. Never throws. */
  async publish(changes: readonly DocumentChange[]): Promise<void> {
    for (const change of changes) {
      for (const listener of this.listeners) {
        await listener(change).catch((e: unknown) =>
          this.logger.warn(
            `document-change listener failed for ${change.documentId}: ${e instanceof Error ? e.message : String(e)}`,
          ),
        );
      }
    }
  }
}
