import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Logger } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { DocumentsService } from '../../src/knowledge/documents.service';
import { KnowledgeBasesService } from '../../src/knowledge/knowledge-bases.service';
import { KnowledgeChunk } from '../../src/knowledge/knowledge-chunk.entity';
import { Ingestion } from '../../src/knowledge/ingestion.entity';
import { RetrievalService } from '../../src/knowledge/retrieval.service';
import { fixture } from '../factories/knowledge';
import { type KnowledgeHarness, startKnowledgeHarness } from '../factories/knowledge-module';
import { createScratchDatabase, type ScratchDatabase } from '../factories/postgres';

const md = (body: string) => Buffer.from(body);
const v1 = md('# Beacon\n\n## Battery\n\nThe battery lasts 60 hours.\n\n## Light\n\nIt gives 300 lumens.\n');
const v2 = md('# Beacon\n\n## Battery\n\nThe battery lasts 80 hours.\n\n## Light\n\nIt gives 300 lumens.\n');
const v3 = md('# Beacon\n\n## Battery\n\nThe battery lasts 99 hours.\n\n## Light\n\nIt gives 300 lumens.\n');

// Boots PGlite and runs real queue jobs: slow on a busy shared machine.
jest.setTimeout(120_000);

/** Ingestion through the real `ingestion` queue on the local Redis, and retrieval, on PGlite with pgvector. */
describe('knowledge (integration, PGlite + pgvector, local Redis)', () => {
  let h: KnowledgeHarness;
  let documents: DocumentsService;
  let retrieval: RetrievalService;
  let kb: string;

  beforeAll(async () => {
    h = await startKnowledgeHarness({ QUEUE_JOB_ATTEMPTS: '2' });
    documents = h.module.get(DocumentsService);
    retrieval = h.module.get(RetrievalService);
    kb = (await h.module.get(KnowledgeBasesService).create(h.tenantA, { name: 'lamps' })).id;
  });
  afterAll(async () => {
    await h?.close();
  });

  const upload = async (name: string, bytes: Buffer, knowledgeBaseId = kb) =>
    (await documents.upload(h.tenantA, knowledgeBaseId, { name, bytes })).ingestion.id;
  const battery = async () =>
    (await retrieval.retrieve({ tenantId: h.tenantA, knowledgeBaseIds: [kb], query: 'battery hours', k: 3 }))
      .passages;

  it('should serve the old version, whole, until the new one is swapped in', async () => {
    await expect(h.settled(h.tenantA, kb, await upload('beacon.md', v1))).resolves.toMatchObject({
      status: 'ready',
      version: 1,
    });
    h.embeddings.close();
    let next: string;
    try {
      next = await upload('beacon.md', v2);
      await h.embeddings.waiting;
      const during = await documents.ingestion(h.tenantA, kb, next);
      expect(during.status).toBe('embedding');
      const served = await battery();
      expect(served[0]).toMatchObject({ version: 1, text: 'The battery lasts 60 hours.' });
      expect(served.every((p) => p.version === 1)).toBe(true);
    } finally {
      h.embeddings.open();
    }
    await expect(h.settled(h.tenantA, kb, next)).resolves.toMatchObject({
      status: 'ready',
      version: 2,
      chunksEmbedded: 1,
    });
    const after = await battery();
    expect(after[0]).toMatchObject({ version: 2, text: 'The battery lasts 80 hours.' });
    expect(after.map((p) => p.text)).not.toContain('The battery lasts 60 hours.');
  });

  it('should not let an older upload that finishes later overwrite a newer one', async () => {
    h.embeddings.close();
    let older: string;
    let newer: string;
    try {
      older = await upload('beacon.md', v3);
      await h.embeddings.waiting;
      newer = await upload('beacon.md', v1);
    } finally {
      h.embeddings.open();
    }
    await expect(h.settled(h.tenantA, kb, older)).resolves.toMatchObject({
      status: 'failed',
      error: expect.stringContaining('superseded by a newer upload'),
    });
    await expect(h.settled(h.tenantA, kb, newer)).resolves.toMatchObject({ status: 'ready', version: 3 });
    expect((await battery())[0].text).toBe('The battery lasts 60 hours.');
  });

  it('should retry a transient failure with backoff, and fail with the reason after the last attempt while the served version stays', async () => {
    h.embeddings.failNext = 1;
    const retried = await upload('retried.md', md('# Retried\n\nA lantern for caves.\n'));
    await expect(h.settled(h.tenantA, kb, retried)).resolves.toMatchObject({
      status: 'ready',
      attempts: 2,
      version: 1,
    });

    h.embeddings.failNext = 2;
    const doomed = await upload('beacon.md', v2);
    const failed = await h.settled(h.tenantA, kb, doomed);
    expect(failed).toMatchObject({
      status: 'failed',
      attempts: 2,
      error: expect.stringContaining('ECONNREFUSED'),
    });
    const { document } = await documents.get(h.tenantA, kb, failed.documentId);
    expect(document).toMatchObject({
      status: 'failed',
      version: 3,
      error: expect.stringContaining('ECONNREFUSED'),
    });
    expect((await battery())[0]).toMatchObject({ version: 3, text: 'The battery lasts 60 hours.' });
    // The uploaded bytes are dropped once an ingestion ends.
    const em = h.module.get(EntityManager).fork();
    const row = await em.findOneOrFail(Ingestion, { id: doomed }, { populate: ['source'] });
    expect(row.source).toBeNull();
  });

  it('should fail a malformed file at once, without retries, and keep the rest of the knowledge base', async () => {
    const calls = h.embeddings.calls;
    const broken = await upload('broken.pdf', fixture('broken.pdf'));
    await expect(h.settled(h.tenantA, kb, broken)).resolves.toMatchObject({
      status: 'failed',
      attempts: 1,
      error: expect.stringContaining('not a readable PDF'),
    });
    expect(h.embeddings.calls).toBe(calls);
    expect((await battery()).length).toBeGreaterThan(0);
  });

  it('should delete a document’s chunks and vectors with it', async () => {
    const id = await upload('gone.md', md('# Gone\n\nA paragraph about glaciers.\n'));
    const ready = await h.settled(h.tenantA, kb, id);
    const em = h.module.get(EntityManager).fork();
    expect(await em.count(KnowledgeChunk, { documentId: ready.documentId })).toBe(1);
    await documents.remove(h.tenantA, kb, ready.documentId);
    expect(await em.count(KnowledgeChunk, { documentId: ready.documentId })).toBe(0);
    const hits = await retrieval.retrieve({
      tenantId: h.tenantA,
      knowledgeBaseIds: [kb],
      query: 'glaciers',
      mode: 'vector',
    });
    expect(hits.passages.map((p) => p.documentName)).not.toContain('gone.md');
  });

  it('should filter by tenant and knowledge base, and accept a precomputed query embedding', async () => {
    const other = (await h.module.get(KnowledgeBasesService).create(h.tenantA, { name: 'tents' })).id;
    await h.settled(h.tenantA, other, await upload('tents.md', fixture('tents.md'), other));
    const both = await retrieval.retrieve({
      tenantId: h.tenantA,
      knowledgeBaseIds: [kb, other],
      query: 'Alpine Ridge warranty',
    });
    expect(both.mode).toBe('hybrid');
    expect(both.passages[0]).toMatchObject({
      documentName: 'tents.md',
      headingPath: ['Alpine Ridge Tent', 'Warranty'],
    });
    const onlyLamps = await retrieval.retrieve({
      tenantId: h.tenantA,
      knowledgeBaseIds: [kb],
      query: 'Alpine Ridge warranty',
    });
    expect(onlyLamps.passages.map((p) => p.documentName)).not.toContain('tents.md');
    const otherTenant = await retrieval.retrieve({
      tenantId: h.tenantB,
      knowledgeBaseIds: [kb, other],
      query: 'Alpine Ridge warranty',
    });
    expect(otherTenant.passages).toEqual([]);

    const calls = h.embeddings.calls;
    const embedding = await h.embeddings.embed('Alpine Ridge warranty');
    const given = await retrieval.retrieve({
      tenantId: h.tenantA,
      knowledgeBaseIds: [other],
      query: 'Alpine Ridge warranty',
      queryEmbedding: embedding,
      mode: 'vector',
    });
    expect(h.embeddings.calls).toBe(calls + 1);
    expect(given.passages[0].ranks).toEqual({ vector: 1 });
    await expect(
      retrieval.retrieve({
        tenantId: h.tenantA,
        knowledgeBaseIds: [other],
        query: 'x',
        queryEmbedding: [1, 0],
      }),
    ).rejects.toMatchObject({ code: 'QueryEmbeddingMismatch' });
  });
});

/** The optional reranker, through the verifier's rerank protocol, against a local endpoint. */
describe('knowledge reranking (integration)', () => {
  let h: KnowledgeHarness;
  let server: Server;
  let failing = false;
  let kb: string;

  beforeAll(async () => {
    // A stand-in cross-encoder: scores a passage by how often it says "flames".
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (failing) return void res.writeHead(500).end();
        const { documents } = JSON.parse(body) as { documents: string[] };
        const results = documents.map((d, index) => ({
          index,
          relevance_score: d.split('flames').length - 1,
        }));
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ results }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    h = await startKnowledgeHarness({
      KNOWLEDGE_RERANK_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/rerank`,
    });
    kb = (await h.module.get(KnowledgeBasesService).create(h.tenantA, { name: 'rerank' })).id;
    const docs = h.module.get(DocumentsService);
    for (const [name, text] of [
      ['a.md', '# Stove\n\nThe stove boils water fast.\n'],
      ['b.md', '# Safety\n\nKeep the stove away from flames and flames and more flames.\n'],
    ]) {
      const { ingestion } = await docs.upload(h.tenantA, kb, { name, bytes: Buffer.from(text) });
      await h.settled(h.tenantA, kb, ingestion.id);
    }
  });
  afterAll(async () => {
    await h?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('should re-order the fused passages by the reranker’s scores, and keep the fused order when it fails', async () => {
    const retrieval = h.module.get(RetrievalService);
    const ask = { tenantId: h.tenantA, knowledgeBaseIds: [kb], query: 'stove boils water', rerank: true };
    const fused = await retrieval.retrieve({ ...ask, rerank: false });
    expect(fused.passages[0].documentName).toBe('a.md');
    const reranked = await retrieval.retrieve(ask);
    expect(reranked).toMatchObject({ reranked: true });
    expect(reranked.passages[0]).toMatchObject({ documentName: 'b.md', score: 3, ranks: { rerank: 1 } });
    failing = true;
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const kept = await retrieval.retrieve(ask);
    warn.mockRestore();
    expect(kept).toMatchObject({ reranked: false, rerankError: 'reranker answered 500' });
    expect(kept.passages.map((p) => p.chunkId)).toEqual(fused.passages.map((p) => p.chunkId));
  });
});

/** On a PostgreSQL server without pgvector: ingestion embeds nothing, retrieval is full-text only and says so once. */
describe('knowledge without pgvector (integration, local PostgreSQL)', () => {
  let db: ScratchDatabase;
  let h: KnowledgeHarness;
  let warn: jest.SpyInstance;

  beforeAll(async () => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    db = await createScratchDatabase();
    h = await startKnowledgeHarness({ DATABASE_URL: db.url });
  });
  afterAll(async () => {
    warn.mockRestore();
    await h?.close();
    await db?.drop();
  });

  it('should ingest without embedding and answer searches by full text, with one clear log line', async () => {
    const kb = (await h.module.get(KnowledgeBasesService).create(h.tenantA, { name: 'plain' })).id;
    const { ingestion } = await h.module
      .get(DocumentsService)
      .upload(h.tenantA, kb, { name: 'tents.md', bytes: fixture('tents.md') });
    await expect(h.settled(h.tenantA, kb, ingestion.id)).resolves.toMatchObject({
      status: 'ready',
      chunksEmbedded: 0,
      embeddingRequests: 0,
    });
    expect(h.embeddings.calls).toBe(0);
    const retrieval = h.module.get(RetrievalService);
    for (const mode of ['hybrid', 'vector'] as const) {
      const result = await retrieval.retrieve({
        tenantId: h.tenantA,
        knowledgeBaseIds: [kb],
        query: 'Alpine Ridge warranty',
        mode,
      });
      expect(result).toMatchObject({ mode: 'fullText', degraded: expect.stringContaining('pgvector') });
      expect(result.passages[0]).toMatchObject({
        documentName: 'tents.md',
        headingPath: ['Alpine Ridge Tent', 'Warranty'],
      });
    }
    const lines = warn.mock.calls.map((c) => String(c[0])).filter((m) => m.includes('FULL-TEXT ONLY'));
    expect(lines).toHaveLength(1);
  });
});
