import { posix } from 'node:path';
import { Injectable } from '@nestjs/common';
import { KnowledgeConfig } from '../config/knowledge.config';
import { DocumentFetchFailed, DocumentTooLarge, DocumentUrlNotAllowed } from './knowledge.errors';

/** A downloaded document. */
export interface FetchedDocument {
  bytes: Buffer;
  /** The server's Content-Type, if any. */
  contentType: string | null;
  /** Last path segment of the URL (decoded), for a default document name. */
  fileName: string;
}

/**
 * Downloads `{url}` uploads from the operator's allow-list only (KNOWLEDGE_URL_ALLOWLIST, URL
 * prefixes): redirects are refused (they could leave the list), the body is read up to
 * KNOWLEDGE_MAX_DOCUMENT_BYTES and the whole download is bounded by KNOWLEDGE_URL_TIMEOUT_MS.
 */
@Injectable()
export class DocumentFetcher {
  constructor(private readonly config: KnowledgeConfig) {}

  /** Whether `url` starts with an allow-listed prefix (compared in WHATWG-normalised form). */
  isAllowed(url: string): boolean {
    let href: string;
    try {
      href = new URL(url).href;
    } catch {
      return false;
    }
    return this.config.KNOWLEDGE_URL_ALLOWLIST.some((prefix) => {
      try {
        return href.startsWith(new URL(prefix).href);
      } catch {
        return false;
      }
    });
  }

  /**
   * @throws DocumentUrlNotAllowed (403) outside the allow-list, DocumentTooLarge (413) past the size
   *   limit, DocumentFetchFailed (502) when the server refuses, times out, redirects or answers non-2xx
   */
  async fetch(url: string): Promise<FetchedDocument> {
    if (!/^https?:\/\//i.test(url) || !this.isAllowed(url)) {
      throw new DocumentUrlNotAllowed(
        this.config.KNOWLEDGE_URL_ALLOWLIST.length === 0
          ? 'URL uploads are off: the operator has not set KNOWLEDGE_URL_ALLOWLIST.'
          : `${url} is not under a prefix of KNOWLEDGE_URL_ALLOWLIST.`,
      );
    }
    const limit = this.config.KNOWLEDGE_MAX_DOCUMENT_BYTES;
    const tooLarge = () =>
      new DocumentTooLarge(`${url} is larger than KNOWLEDGE_MAX_DOCUMENT_BYTES (${limit} bytes).`, {
        limitBytes: limit,
      });
    let response: Response;
    const signal = AbortSignal.timeout(this.config.KNOWLEDGE_URL_TIMEOUT_MS);
    try {
      response = await fetch(url, { redirect: 'error', signal });
    } catch (e) {
      throw new DocumentFetchFailed(`Cannot download ${url}: ${describe(e)}`);
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new DocumentFetchFailed(`Cannot download ${url}: the server answered ${response.status}.`);
    }
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (declared > limit) {
      await response.body?.cancel();
      throw tooLarge();
    }
    const parts: Buffer[] = [];
    let size = 0;
    try {
      for await (const part of response.body ?? []) {
        size += (part as Uint8Array).byteLength;
        if (size > limit) throw tooLarge();
        parts.push(Buffer.from(part as Uint8Array));
      }
    } catch (e) {
      if (e instanceof DocumentTooLarge) throw e;
      throw new DocumentFetchFailed(`Cannot download ${url}: ${describe(e)}`);
    }
    const path = new URL(url).pathname;
    return {
      bytes: Buffer.concat(parts),
      contentType: response.headers.get('content-type'),
      fileName: decodeURIComponent(posix.basename(path)) || new URL(url).hostname,
    };
  }
}

function describe(e: unknown): string {
  if (e instanceof Error && e.name === 'TimeoutError') return 'timed out';
  const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : '';
  return `${e instanceof Error ? e.message : String(e)}${cause}`;
}
