import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { EntityManager } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import { KnowledgeBase } from './knowledge-base.entity';
import { DocumentChanges } from './document-changes';
import { KnowledgeDocument } from './knowledge-document.entity';
import { KnowledgeBaseExists, KnowledgeBaseNotFound } from './knowledge.errors';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A knowledge base with its document counts. */
export interface KnowledgeBaseSummary {
  knowledgeBase: KnowledgeBase;
  /** Documents of the knowledge base (any status). */
  documents: number;
  /** Documents with a version served by retrieval. */
  searchableDocuments: number;
}

/** Knowledge bases of a tenant: create, list, read, rename, delete (documents and chunks cascade). */
@Injectable()
export class KnowledgeBasesService {
  constructor(
    private readonly em: EntityManager,
    private readonly changes: DocumentChanges,
  ) {}

  /**
   * Checks that every id names a knowledge base of the tenant (binding a conversation to them).
   * @returns the ids, deduplicated, in the order given
   * @throws KnowledgeBaseNotFound naming the first id that is not the tenant's (or not a uuid)
   */
  async requireOwned(tenantId: string, ids: readonly string[]): Promise<string[]> {
    const unique = [...new Set(ids)];
    const malformed = unique.find((id) => !UUID.test(id));
    if (malformed !== undefined) throw new KnowledgeBaseNotFound(malformed);
    if (unique.length === 0) return [];
    const found = await this.em
      .fork()
      .find(KnowledgeBase, { tenantId, id: { $in: unique } }, { fields: ['id'], disableIdentityMap: true });
    const owned = new Set(found.map((k) => k.id));
    const missing = unique.find((id) => !owned.has(id));
    if (missing !== undefined) throw new KnowledgeBaseNotFound(missing);
    return unique;
  }

  /** Ids of all the tenant's knowledge bases (what an unbound conversation searches). */
  async ids(tenantId: string): Promise<string[]> {
    const rows = await this.em
      .fork()
      .find(KnowledgeBase, { tenantId }, { fields: ['id'], disableIdentityMap: true });
    return rows.map((k) => k.id);
  }

  /** @throws KnowledgeBaseExists when the tenant has one of that name */
  async create(
    tenantId: string,
    input: { name: string; description?: string | null },
  ): Promise<KnowledgeBase> {
    const em = this.em.fork();
    const kb = em.create(KnowledgeBase, {
      tenantId,
      name: input.name,
      description: input.description ?? null,
    });
    try {
      await em.flush();
    } catch (e) {
      if (e instanceof UniqueConstraintViolationException) throw new KnowledgeBaseExists(input.name);
      throw e;
    }
    return kb;
  }

  /** The tenant's knowledge base of that name, created if missing (the CLI's `--kb NAME`). */
  async ensure(tenantId: string, name: string): Promise<KnowledgeBase> {
    const found = await this.em.fork().findOne(KnowledgeBase, { tenantId, name });
    if (found) return found;
    try {
      return await this.create(tenantId, { name });
    } catch (e) {
      if (!(e instanceof KnowledgeBaseExists)) throw e;
      return this.byName(tenantId, name);
    }
  }

  /** @throws KnowledgeBaseNotFound */
  async get(tenantId: string, id: string): Promise<KnowledgeBase> {
    const kb = await this.em.fork().findOne(KnowledgeBase, { id, tenantId });
    if (!kb) throw new KnowledgeBaseNotFound(id);
    return kb;
  }

  /** @throws KnowledgeBaseNotFound */
  async byName(tenantId: string, name: string): Promise<KnowledgeBase> {
    const kb = await this.em.fork().findOne(KnowledgeBase, { tenantId, name });
    if (!kb) throw new KnowledgeBaseNotFound(name);
    return kb;
  }

  /** Every knowledge base of the tenant, by name, with document counts. */
  async list(tenantId: string): Promise<KnowledgeBaseSummary[]> {
    const em = this.em.fork();
    const kbs = await em.find(KnowledgeBase, { tenantId }, { orderBy: { name: 'asc' } });
    return Promise.all(kbs.map((kb) => this.summarise(em, kb)));
  }

  /** One knowledge base with its counts. @throws KnowledgeBaseNotFound */
  async describe(tenantId: string, id: string): Promise<KnowledgeBaseSummary> {
    const em = this.em.fork();
    const kb = await em.findOne(KnowledgeBase, { id, tenantId });
    if (!kb) throw new KnowledgeBaseNotFound(id);
    return this.summarise(em, kb);
  }

  private async summarise(em: EntityManager, kb: KnowledgeBase): Promise<KnowledgeBaseSummary> {
    const [documents, searchableDocuments] = await Promise.all([
      em.count(KnowledgeDocument, { tenantId: kb.tenantId, knowledgeBaseId: kb.id }),
      em.count(KnowledgeDocument, { tenantId: kb.tenantId, knowledgeBaseId: kb.id, version: { $gt: 0 } }),
    ]);
    return { knowledgeBase: kb, documents, searchableDocuments };
  }

  /** @throws KnowledgeBaseNotFound, KnowledgeBaseExists (renamed onto another's name) */
  async update(
    tenantId: string,
    id: string,
    input: { name?: string; description?: string | null },
  ): Promise<KnowledgeBase> {
    const em = this.em.fork();
    const kb = await em.findOne(KnowledgeBase, { id, tenantId });
    if (!kb) throw new KnowledgeBaseNotFound(id);
    if (input.name !== undefined) kb.name = input.name;
    if (input.description !== undefined) kb.description = input.description;
    try {
      await em.flush();
    } catch (e) {
      if (e instanceof UniqueConstraintViolationException)
        throw new KnowledgeBaseExists(input.name ?? kb.name);
      throw e;
    }
    return kb;
  }

  /** Deletes the knowledge base, its documents, chunks and vectors. @throws KnowledgeBaseNotFound */
  async remove(tenantId: string, id: string): Promise<void> {
    const em = this.em.fork();
    const documents = await em.find(
      KnowledgeDocument,
      { tenantId, knowledgeBaseId: id },
      { fields: ['id'], disableIdentityMap: true },
    );
    const deleted = await em.nativeDelete(KnowledgeBase, { id, tenantId });
    if (deleted === 0) throw new KnowledgeBaseNotFound(id);
    await this.changes.publish(
      documents.map((d) => ({ tenantId, knowledgeBaseId: id, documentId: d.id, version: null })),
    );
  }
}
