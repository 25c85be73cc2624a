import { Injectable } from '@nestjs/common';
import type { AuthContext } from './api-key.service';
import { ModelNotAllowed, ScopeMissing } from './auth.errors';
import type { Scope } from './scopes';

/**
 * What a key may do, checked where the answer is known: scopes by the guard (`@RequireScopes`),
 * models by the endpoint that resolves the request's model (chat completions, embeddings, turns).
 */
@Injectable()
export class AccessPolicy {
  /**
   * @param model the model name the request asks for (as the client wrote it, before aliases)
   * @throws ModelNotAllowed (403) naming the model and the key's allow-list
   */
  assertModelAllowed(auth: AuthContext, model: string): void {
    const allowed = auth.models;
    if (!allowed || allowed.includes(model)) return;
    throw new ModelNotAllowed(
      `This API key may not use model "${model}"; it may use: ${allowed.join(', ') || '(none)'}.`,
      { model, allowedModels: [...allowed] },
    );
  }

  /** @throws ScopeMissing (403) naming every scope the key lacks */
  assertScopes(auth: AuthContext, required: readonly Scope[]): void {
    const missing = required.filter((s) => !(auth.scopes ?? []).includes(s));
    if (missing.length === 0) return;
    throw new ScopeMissing(
      `This API key lacks the scope${missing.length > 1 ? 's' : ''} ${missing.join(', ')} needed here.`,
      { missingScopes: missing },
    );
  }
}
