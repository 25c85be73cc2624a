import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { api } from './test-app';

/** Directory of the small knowledge fixtures committed with the tests. */
export const KNOWLEDGE_FIXTURES = join(__dirname, '..', 'fixtures', 'knowledge');

/** A fixture file's bytes. */
export function fixture(name: string): Buffer {
  return readFileSync(join(KNOWLEDGE_FIXTURES, name));
}

/** One file of a multipart upload. */
export interface UploadFile {
  name: string;
  bytes: Buffer;
  type?: string;
}

/** POSTs files as multipart/form-data (field `file`) to a knowledge base's documents. */
export async function uploadFiles(
  baseUrl: string,
  key: string,
  knowledgeBaseId: string,
  files: UploadFile[],
): Promise<{ status: number; body: any }> {
  const form = new FormData();
  for (const f of files)
    form.append(
      'file',
      new Blob([new Uint8Array(f.bytes)], { type: f.type ?? 'application/octet-stream' }),
      f.name,
    );
  const response = await fetch(`${baseUrl}/v1/knowledge-bases/${knowledgeBaseId}/documents`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}` },
    body: form,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/**
 * Polls an ingestion until it is `ready` or `failed` (a deadline, not a fixed sleep: the loop ends as
 * soon as the state is reached).
 */
export async function waitForIngestion(
  baseUrl: string,
  key: string,
  knowledgeBaseId: string,
  ingestionId: string,
  timeoutMs = 30_000,
): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await api(`${baseUrl}/v1/knowledge-bases/${knowledgeBaseId}/ingestions/${ingestionId}`, {
      key,
    });
    if (body?.status === 'ready' || body?.status === 'failed') return body;
    if (Date.now() > deadline)
      throw new Error(`ingestion ${ingestionId} still ${body?.status} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
