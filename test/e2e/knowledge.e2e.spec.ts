import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { fixture, uploadFiles, waitForIngestion } from '../factories/knowledge';
import { EntityManager } from '@mikro-orm/postgresql';
import { deleteRedisPrefix } from '../factories/redis';
import { api, startTestApp, type TestApp } from '../factories/test-app';
import { waitFor } from '../factories/processes';

// Boots the app and runs real queue jobs: slow on a busy shared machine.
jest.setTimeout(120_000);

/** Knowledge bases over HTTP: uploads (multipart, JSON, URL), the ingestion queue, search, re-ingestion. */
describe('knowledge (e2e)', () => {
  let sut: TestApp;
  let files: Server;
  let filesUrl: string;
  const prefix = `kvchat-test-${randomUUID()}:`;

  beforeAll(async () => {
    files = createServer((req, res) => {
      if (req.url === '/docs/stoves.txt') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(fixture('stoves.txt'));
      } else if (req.url === '/docs/moved') {
        res.writeHead(302, { location: 'http://example.invalid/' }).end();
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
    filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
    sut = await startTestApp({
      REDIS_KEY_PREFIX: prefix,
      KNOWLEDGE_MAX_DOCUMENT_BYTES: '4096',
      KNOWLEDGE_URL_ALLOWLIST: `${filesUrl}/docs/`,
      KNOWLEDGE_CHUNK_TOKENS: '48',
      KNOWLEDGE_CHUNK_OVERLAP_TOKENS: '8',
      QUEUE_JOB_BACKOFF_MS: '10',
    });
  });
  afterAll(async () => {
    await sut?.close();
    await deleteRedisPrefix(prefix);
    await new Promise((resolve) => files?.close(resolve));
  });

  const kbUrl = (id: string, path = ''): string => `${sut.url}/v1/knowledge-bases/${id}${path}`;
  const createKb = async (name: string, key = sut.keyA): Promise<string> => {
    const { status, body } = await api(`${sut.url}/v1/knowledge-bases`, { key, body: { name } });
    expect(status).toBe(201);
    return body.id as string;
  };
  const search = async (id: string, query: string, extra: Record<string, unknown> = {}, key = sut.keyA) =>
    api(kbUrl(id, '/search'), { key, body: { query, ...extra } });

  it('should create, list, rename and delete knowledge bases per tenant', async () => {
    const id = await createKb('crud');
    expect(
      (await api(`${sut.url}/v1/knowledge-bases`, { key: sut.keyA, body: { name: 'crud' } })).status,
    ).toBe(409);
    const list = await api(`${sut.url}/v1/knowledge-bases`, { key: sut.keyA });
    expect(list.body.data.map((k: any) => k.name)).toContain('crud');
    expect((await api(`${sut.url}/v1/knowledge-bases`, { key: sut.keyB })).body.data).toEqual([]);
    expect((await api(kbUrl(id), { key: sut.keyB })).status).toBe(404);
    const renamed = await api(kbUrl(id), {
      key: sut.keyA,
      method: 'PATCH',
      body: { name: 'crud-2', description: 'd' },
    });
    expect(renamed.body).toMatchObject({ name: 'crud-2', description: 'd', documents: 0 });
    const invalid = await api(`${sut.url}/v1/knowledge-bases`, { key: sut.keyA, body: { name: '' } });
    expect(invalid.status).toBe(400);
    expect(invalid.body.detail).toMatch(/name/);
    expect((await api(kbUrl(id), { key: sut.keyA, method: 'DELETE' })).status).toBe(204);
    expect((await api(kbUrl(id), { key: sut.keyA })).status).toBe(404);
  });

  it('should ingest a batch through the queue, fail only the malformed files with a reason and refuse the rest alone', async () => {
    const id = await createKb('batch');
    const { status, body } = await uploadFiles(sut.url, sut.keyA, id, [
      { name: 'tents.md', bytes: fixture('tents.md'), type: 'text/markdown' },
      { name: 'huge.md', bytes: Buffer.alloc(5000, 'a') },
      { name: 'lanterns.html', bytes: fixture('lanterns.html'), type: 'text/html' },
      { name: 'guide.pdf', bytes: fixture('guide.pdf'), type: 'application/pdf' },
      { name: 'stoves.txt', bytes: fixture('stoves.txt') },
      { name: 'broken.pdf', bytes: fixture('broken.pdf'), type: 'application/pdf' },
      { name: 'blank.txt', bytes: Buffer.from('  \n\n ') },
      { name: 'empty.md', bytes: Buffer.alloc(0) },
      { name: 'pixel.png', bytes: fixture('pixel.png'), type: 'image/png' },
    ]);
    expect(status).toBe(202);
    expect(body.rejected).toEqual([
      expect.objectContaining({
        name: 'huge.md',
        status: 413,
        code: 'DocumentTooLarge',
        detail: expect.stringContaining('KNOWLEDGE_MAX_DOCUMENT_BYTES (4096 bytes)'),
      }),
      expect.objectContaining({ name: 'empty.md', status: 400, code: 'InvalidDocument' }),
      expect.objectContaining({ name: 'pixel.png', status: 415, code: 'UnsupportedDocumentType' }),
    ]);
    expect(body.documents.map((d: any) => d.name)).toEqual([
      'tents.md',
      'lanterns.html',
      'guide.pdf',
      'stoves.txt',
      'broken.pdf',
      'blank.txt',
    ]);
    const results: Record<string, any> = {};
    for (const d of body.documents)
      results[d.name] = await waitForIngestion(sut.url, sut.keyA, id, d.ingestionId);
    for (const name of ['tents.md', 'lanterns.html', 'guide.pdf', 'stoves.txt']) {
      expect(results[name]).toMatchObject({ status: 'ready', version: 1, error: null });
      expect(results[name].chunksDone).toBe(results[name].chunksTotal);
      expect(results[name].chunksTotal).toBeGreaterThan(0);
    }
    expect(results['broken.pdf']).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: expect.stringMatching(/not a readable PDF/),
    });
    expect(results['blank.txt']).toMatchObject({ status: 'failed', error: expect.stringMatching(/no text/) });

    const broken = body.documents.find((d: any) => d.name === 'broken.pdf');
    const doc = await api(kbUrl(id, `/documents/${broken.documentId}`), { key: sut.keyA });
    expect(doc.body).toMatchObject({ status: 'failed', version: 0, error: expect.stringMatching(/PDF/) });

    // Every good document is searchable, each by its own format's content.
    const pdf = await search(id, 'how many hours does the Glacier Lantern run');
    expect(pdf.body.passages[0]).toMatchObject({ documentName: 'guide.pdf', headingPath: ['Page 1'] });
    const html = await search(id, 'Beacon lantern battery hours');
    expect(html.body.passages[0]).toMatchObject({
      documentName: 'lanterns.html',
      headingPath: ['Beacon Lantern', 'Battery'],
    });
    expect(html.body.passages.map((p: any) => p.text).join(' ')).not.toMatch(/tracking|color: red/);
    const md = await search(id, 'how long is the Alpine Ridge warranty');
    expect(md.body).toMatchObject({ mode: 'hybrid', reranked: false });
    expect(md.body.passages[0]).toMatchObject({
      documentName: 'tents.md',
      version: 1,
      headingPath: ['Alpine Ridge Tent', 'Warranty'],
    });
    const source = fixture('tents.md').toString('utf8');
    const top = md.body.passages[0];
    expect(source.slice(top.start, top.end)).toBe(top.text);
    expect(top.ranks.vector).toBeGreaterThan(0);
    expect(top.ranks.fullText).toBeGreaterThan(0);
  });

  it('should make every document of an upload larger than the connection pool ready while their statuses are polled', async () => {
    // More documents than the embedded database's pool (8 connections) and the worker's concurrency
    // (1), in one upload, all polled at once while the worker ingests them and bills each one (a usage
    // batch, one parameterised INSERT): the shape of `bench:rag` on 20 manuals, which stalled when a
    // connection's BEGIN reached PGlite inside another connection's failed extended-query exchange
    // and was never answered (src/database/pglite-session-queue.ts).
    const id = await createKb('larger-than-the-pool');
    const count = 24;
    const files = Array.from({ length: count }, (_, i) => ({
      name: `lamp-${String(i).padStart(2, '0')}.md`,
      bytes: Buffer.from(
        `# Lamp ${i}\n\n## Battery\n\nLamp ${i} runs ${10 + i} hours on one charge.\n\n` +
          `## Light\n\nLamp ${i} gives ${100 + i} lumens.\n\n## Care\n\nWipe lamp ${i} with a dry cloth.\n`,
      ),
      type: 'text/markdown',
    }));
    const { status, body } = await uploadFiles(sut.url, sut.keyA, id, files);
    expect(status).toBe(202);
    expect(body.documents).toHaveLength(count);
    const settled = await Promise.all(
      body.documents.map((d: any) => waitForIngestion(sut.url, sut.keyA, id, d.ingestionId, 90_000)),
    );
    expect(settled.map((i) => [i.status, i.version, i.error])).toEqual(files.map(() => ['ready', 1, null]));
    const listed = await api(kbUrl(id, '/documents'), { key: sut.keyA });
    expect(listed.body.data.map((d: any) => [d.name, d.status, d.version])).toEqual(
      files.map((f) => [f.name, 'ready', 1]),
    );
    const found = await search(id, 'Lamp 17 lumens', { k: 1 });
    expect(found.body.passages[0]).toMatchObject({
      documentName: 'lamp-17.md',
      headingPath: ['Lamp 17', 'Light'],
    });
  });

  it('should refuse a single upload that is too big, of an unknown type or empty with its own status', async () => {
    const id = await createKb('single');
    const big = await api(kbUrl(id, '/documents'), {
      key: sut.keyA,
      body: { name: 'big.md', content: 'x'.repeat(5000) },
    });
    expect(big.status).toBe(413);
    expect(big.body).toMatchObject({
      code: 'DocumentTooLarge',
      detail: expect.stringContaining('KNOWLEDGE_MAX_DOCUMENT_BYTES'),
    });
    const type = await api(kbUrl(id, '/documents'), {
      key: sut.keyA,
      body: { name: 'sheet.xlsx', content: 'a,b' },
    });
    expect(type.status).toBe(415);
    expect(type.body.detail).toMatch(/text\/markdown, text\/plain, text\/html, application\/pdf/);
    const empty = await uploadFiles(sut.url, sut.keyA, id, [{ name: 'empty.txt', bytes: Buffer.alloc(0) }]);
    expect(empty.status).toBe(400);
    expect(empty.body).toMatchObject({
      code: 'InvalidDocument',
      rejected: [expect.objectContaining({ name: 'empty.txt' })],
    });
    const overBody = await api(kbUrl(id, '/documents'), {
      key: sut.keyA,
      body: { name: 'body.md', content: 'y'.repeat(1_100_000) },
    });
    expect(overBody.status).toBe(413);
    expect(overBody.body.detail).toMatch(/BODY_LIMIT_BYTES/);
    const missing = await api(kbUrl(id, '/documents'), { key: sut.keyA, body: { name: 'x.md' } });
    expect(missing.status).toBe(400);
    expect(missing.body.detail).toMatch(/content/);
    expect((await api(kbUrl(id, '/documents'), { key: sut.keyA })).body.data).toEqual([]);
  });

  it('should re-ingest unchanged content without a job, and changed content by re-embedding only the changed chunks', async () => {
    const id = await createKb('versions');
    const original = fixture('tents.md').toString('utf8');
    const post = (content: string) =>
      api(kbUrl(id, '/documents'), { key: sut.keyA, body: { name: 'tents.md', content } });
    const first = await post(original);
    expect(first.status).toBe(202);
    const v1 = await waitForIngestion(sut.url, sut.keyA, id, first.body.documents[0].ingestionId);
    expect(v1).toMatchObject({ status: 'ready', version: 1 });
    expect(v1.chunksEmbedded).toBe(v1.chunksTotal);

    const again = await post(original);
    expect(again.body.documents[0]).toMatchObject({ status: 'ready', unchanged: true, version: 1 });
    const same = await api(kbUrl(id, `/ingestions/${again.body.documents[0].ingestionId}`), {
      key: sut.keyA,
    });
    expect(same.body).toMatchObject({
      status: 'ready',
      unchanged: true,
      chunksEmbedded: 0,
      embeddingRequests: 0,
      version: 1,
    });

    const changed = original.replace('5-year warranty', '7-year warranty');
    const second = await post(changed);
    const v2 = await waitForIngestion(sut.url, sut.keyA, id, second.body.documents[0].ingestionId);
    expect(v2).toMatchObject({ status: 'ready', version: 2, unchanged: false });
    expect(v2.chunksEmbedded).toBeGreaterThan(0);
    expect(v2.chunksEmbedded).toBeLessThan(v2.chunksTotal);
    const hit = await search(id, 'Alpine Ridge warranty years');
    expect(hit.body.passages[0]).toMatchObject({
      version: 2,
      text: expect.stringContaining('7-year warranty'),
    });
    expect(hit.body.passages.map((p: any) => p.text).join(' ')).not.toContain('5-year');

    // Billed: one usage record per ingestion that embedded chunks, for the chunks it embedded only.
    const billed = (ingestionId: string) =>
      sut.running.app
        .get(EntityManager)
        .getConnection()
        .execute<{ endpoint: string; prompt_tokens: number; tenant_id: string }[]>(
          'select endpoint, prompt_tokens, tenant_id from usage_records where request_id = ?',
          [`ingestion:${ingestionId}`],
        );
    const [r1] = await waitFor('the first ingestion in the ledger', async () => {
      const rows = await billed(first.body.documents[0].ingestionId);
      return rows.length > 0 ? rows : undefined;
    });
    const [r2] = await waitFor('the second ingestion in the ledger', async () => {
      const rows = await billed(second.body.documents[0].ingestionId);
      return rows.length > 0 ? rows : undefined;
    });
    expect(r1).toMatchObject({ endpoint: 'ingestion', tenant_id: sut.tenantA });
    expect(r2.prompt_tokens).toBeGreaterThan(0);
    expect(r2.prompt_tokens).toBeLessThan(r1.prompt_tokens);
    expect(await billed(again.body.documents[0].ingestionId)).toEqual([]);

    const doc = await api(kbUrl(id, `/documents/${second.body.documents[0].documentId}`), { key: sut.keyA });
    expect(doc.body).toMatchObject({ version: 2, status: 'ready', chunkCount: v2.chunksTotal });
    expect(
      (await api(kbUrl(id, `/documents/${doc.body.id}`), { key: sut.keyA, method: 'DELETE' })).status,
    ).toBe(204);
    expect((await search(id, 'Alpine Ridge warranty years')).body.passages).toEqual([]);
    expect((await api(kbUrl(id, `/documents/${doc.body.id}`), { key: sut.keyA })).status).toBe(404);
  });

  it('should fetch allow-listed URLs only', async () => {
    const id = await createKb('urls');
    const ok = await api(kbUrl(id, '/documents'), {
      key: sut.keyA,
      body: { url: `${filesUrl}/docs/stoves.txt` },
    });
    expect(ok.status).toBe(202);
    expect(ok.body.documents[0]).toMatchObject({ name: 'stoves.txt' });
    await expect(
      waitForIngestion(sut.url, sut.keyA, id, ok.body.documents[0].ingestionId),
    ).resolves.toMatchObject({ status: 'ready' });
    const outside = await api(kbUrl(id, '/documents'), {
      key: sut.keyA,
      body: { url: `${filesUrl}/private/x.txt` },
    });
    expect(outside).toMatchObject({ status: 403, body: { code: 'DocumentUrlNotAllowed' } });
    const redirected = await api(kbUrl(id, '/documents'), {
      key: sut.keyA,
      body: { url: `${filesUrl}/docs/moved` },
    });
    expect(redirected).toMatchObject({ status: 502, body: { code: 'DocumentFetchFailed' } });
    const missing = await api(kbUrl(id, '/documents'), {
      key: sut.keyA,
      body: { url: `${filesUrl}/docs/none.md` },
    });
    expect(missing.status).toBe(502);
    expect(missing.body.detail).toMatch(/404/);
  });

  it('should never show one tenant another tenant’s knowledge', async () => {
    const id = await createKb('private');
    const up = await api(kbUrl(id, '/documents'), {
      key: sut.keyA,
      body: { name: 'stoves.txt', content: fixture('stoves.txt').toString() },
    });
    await waitForIngestion(sut.url, sut.keyA, id, up.body.documents[0].ingestionId);
    expect((await search(id, 'Ember camp stove', {}, sut.keyB)).status).toBe(404);
    expect((await api(kbUrl(id, '/documents'), { key: sut.keyB })).status).toBe(404);
    expect(
      (await api(kbUrl(id, `/ingestions/${up.body.documents[0].ingestionId}`), { key: sut.keyB })).status,
    ).toBe(404);
    const own = await search(id, 'Ember camp stove', { mode: 'fullText', k: 1 });
    expect(own.body).toMatchObject({
      mode: 'fullText',
      passages: [expect.objectContaining({ documentName: 'stoves.txt' })],
    });
    const rerank = await search(id, 'Ember camp stove', { rerank: true });
    expect(rerank).toMatchObject({
      status: 400,
      body: { detail: expect.stringMatching(/KNOWLEDGE_RERANK_URL/) },
    });
  });
});
