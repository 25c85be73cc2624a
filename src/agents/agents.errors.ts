import { DomainError } from '../common/domain-error';

/** No agent of that name is registered (e.g. a conversation pinned to an unknown agent). */
export class AgentNotFound extends DomainError {
  readonly code = 'AgentNotFound';
  constructor(name: string, known: readonly string[]) {
    super(`No agent named "${name}". Registered agents: ${known.join(', ')}.`, {
      agent: name,
      agents: known,
    });
  }
}

/**
 * An `@Agent` declaration that cannot be registered (bad name, duplicate name, template mismatch,
 * missing fallback agent). Thrown at boot, so a broken agent never reaches a turn.
 */
export class AgentDefinitionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentDefinitionError';
  }
}
