/**
 * What an API key may do. A route names the scopes it needs with `@RequireScopes(...)`; a key
 * without one of them gets 403 `ScopeMissing` naming it.
 * - `chat`: conversations and turns
 * - `completions`: the OpenAI-compatible `/v1/chat/completions` and `/v1/models`
 * - `embeddings`: `/v1/embeddings`
 * - `knowledge:read`, `knowledge:write`: knowledge bases (read; create, ingest, delete)
 * - `usage:read`: the tenant's usage ledger (`GET /v1/usage`)
 * - `admin`: manage the tenant's keys (`/v1/admin/keys`); with the platform flag, every tenant
 */
export const SCOPES = [
  'chat',
  'completions',
  'embeddings',
  'knowledge:read',
  'knowledge:write',
  'usage:read',
  'admin',
] as const;

export type Scope = (typeof SCOPES)[number];

/** Scopes a key gets when created without a `scopes` list: everything a tenant's application does, not `admin`. */
export const DEFAULT_SCOPES: readonly Scope[] = SCOPES.filter((s) => s !== 'admin');

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}
