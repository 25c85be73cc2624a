/** Any absolute URL (`http://vllm-0:8000/v1`, `redis://...`, `postgres://...`). */
const ADDRESS = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>)\]]+/gi;

/** Extension members that hold internal addresses; kept in logs, never sent to clients. */
export const INTERNAL_EXTENSIONS: ReadonlySet<string> = new Set(['replica']);

/**
 * An error message as a tenant may see it: internal addresses (engine replica URLs, database or Redis
 * URLs) become "an internal service". The full message stays in the logs.
 */
export function clientDetail(message: string): string {
  return message.replace(ADDRESS, 'an internal service');
}

/** `extensions` without the members that hold internal addresses. */
export function clientExtensions(extensions: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(extensions).filter(([k]) => !INTERNAL_EXTENSIONS.has(k)));
}
