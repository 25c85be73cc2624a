import { DomainError } from '../common/domain-error';
import type { ErrorCode } from '../common/problem-statuses';

/** No knowledge base with that id (or name) for this tenant; another tenant's is also "not found". */
export class KnowledgeBaseNotFound extends DomainError {
  readonly code = 'KnowledgeBaseNotFound';
  constructor(idOrName: string) {
    super(`Knowledge base ${idOrName} does not exist.`, { knowledgeBase: idOrName });
  }
}

/** The tenant already has a knowledge base of that name. */
export class KnowledgeBaseExists extends DomainError {
  readonly code = 'KnowledgeBaseExists';
  constructor(name: string) {
    super(`A knowledge base named "${name}" already exists.`, { name });
  }
}

/** No document with that id in the knowledge base. */
export class DocumentNotFound extends DomainError {
  readonly code = 'DocumentNotFound';
  constructor(id: string) {
    super(`Document ${id} does not exist in this knowledge base.`, { documentId: id });
  }
}

/** No ingestion with that id in the knowledge base. */
export class IngestionNotFound extends DomainError {
  readonly code = 'IngestionNotFound';
  constructor(id: string) {
    super(`Ingestion ${id} does not exist in this knowledge base.`, { ingestionId: id });
  }
}

/** A document is larger than KNOWLEDGE_MAX_DOCUMENT_BYTES (or a request carries too many files). */
export class DocumentTooLarge extends DomainError {
  readonly code = 'DocumentTooLarge';
}

/** A document's type is not one the parser reads. */
export class UnsupportedDocumentType extends DomainError {
  readonly code = 'UnsupportedDocumentType';
}

/** A document has no bytes, or its name is unusable. */
export class InvalidDocument extends DomainError {
  readonly code = 'InvalidDocument';
}

/** A `{url}` upload names a URL outside KNOWLEDGE_URL_ALLOWLIST. */
export class DocumentUrlNotAllowed extends DomainError {
  readonly code = 'DocumentUrlNotAllowed';
}

/** A `{url}` upload could not be downloaded (refused, timed out, redirected, not 2xx). */
export class DocumentFetchFailed extends DomainError {
  readonly code = 'DocumentFetchFailed';
}

/** The ingestion queue (Redis) did not take the job; nothing was queued. */
export class IngestionQueueUnavailable extends DomainError {
  readonly code = 'IngestionQueueUnavailable';
}

/** Every file of an upload was refused: the first refusal's code and detail, and `rejected` listing each. */
export class UploadRejected extends DomainError {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, detail: string, rejected: unknown[]) {
    super(detail, { rejected });
    this.code = code;
  }
}

/**
 * A document's content cannot be read (malformed PDF, no text). Ingestion fails that document with
 * this reason; it is not retried, since the same bytes fail the same way.
 */
export class DocumentUnreadable extends DomainError {
  readonly code = 'DocumentUnreadable';
}

/** A search query's embedding does not fit the knowledge collection (another model or dimension). */
export class QueryEmbeddingMismatch extends DomainError {
  readonly code = 'QueryEmbeddingMismatch';
}
