import { DomainError } from '../common/domain-error';

/** The embeddings server cannot be reached or answers with unusable vectors. Maps to 503. */
export class EmbeddingsUnavailable extends DomainError {
  readonly code = 'EmbeddingsUnavailable';
}
