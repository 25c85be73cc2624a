import { DomainError } from '../common/domain-error';

/** The requested model is not the one the engine serves. Maps to 404 (as vLLM and OpenAI answer). */
export class ModelNotFound extends DomainError {
  readonly code = 'ModelNotFound';
}
