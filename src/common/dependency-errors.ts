import { DomainError } from './domain-error';

/** A backing service the request path needs. */
export type Dependency = 'redis' | 'database';

/**
 * A dependency the request needs did not answer (down, restarting, or slower than its deadline).
 * 503 with `Retry-After` and `dependency` naming it; the client may retry the same request.
 */
export class DependencyUnavailable extends DomainError {
  readonly code = 'DependencyUnavailable';
  constructor(
    readonly dependency: Dependency,
    retryAfterSeconds = 2,
  ) {
    super(`${dependency === 'redis' ? 'Redis' : 'The database'} is unavailable; try again shortly.`, {
      dependency,
      retryAfterSeconds,
    });
  }
}

/** ioredis' messages for a command that could not be sent or answered (its errors have no codes). */
const REDIS_MESSAGES = [
  /enableOfflineQueue options is false/,
  /^Connection is closed/,
  /^Command timed out/,
  /Reached the max retries per request limit/,
];
/** Names of ioredis and redlock errors that mean Redis did not answer. */
const REDIS_NAMES = new Set(['MaxRetriesPerRequestError', 'ClusterAllFailedError']);

/**
 * SQLSTATE classes and socket codes that mean PostgreSQL is not serving: 08 (connection exception),
 * 57P01-57P03 (admin shutdown, crash shutdown, cannot connect now), 53300 (too many connections).
 */
const DATABASE_STATES = /^(08\d{3}|57P0[123]|53300)$/;
/** Socket codes, counted only inside a MikroORM exception (an engine's socket errors are its own). */
const SOCKET_CODES = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN)$/;
const DATABASE_MESSAGES = [
  /Connection terminated/,
  /Timeout acquiring a connection/,
  /the database system is/,
];

/** Ports of the PostgreSQL servers this process connects to (raw socket errors carry only a port). */
const databasePorts = new Set<number>();

/**
 * Records the database URL this process uses, so that a refused or reset connection to it is
 * recognised as the database being down (knex and pg raise those unwrapped). Called by the database module.
 */
export function registerDatabaseEndpoint(url: string): void {
  try {
    databasePorts.add(Number(new URL(url).port || 5432));
  } catch {
    // An unparseable URL fails the ORM's own connect with a clearer message.
  }
}

/** Fields through which wrapped errors point at their cause (MikroORM, redlock, plain `cause`). */
function* chain(error: unknown): Generator<Record<string, unknown>> {
  const seen = new Set<unknown>();
  const queue: unknown[] = [error];
  while (queue.length > 0 && seen.size < 16) {
    const e = queue.shift();
    if (typeof e !== 'object' || e === null || seen.has(e)) continue;
    seen.add(e);
    const r = e as Record<string, unknown>;
    yield r;
    queue.push(r.cause, r.previous);
    // redlock's ExecutionError: the attempts' own errors.
    if (Array.isArray(r.attempts)) queue.push(...(r.attempts as unknown[]));
    if (Array.isArray(r.votesAgainst)) queue.push(...(r.votesAgainst as unknown[]));
    if (r.votesAgainst instanceof Map) queue.push(...(r.votesAgainst as Map<unknown, unknown>).values());
  }
}

/** Is `error` (or what it wraps) a Redis client failure? Never true for a lock held by someone else. */
export function isRedisFailure(error: unknown): boolean {
  for (const e of chain(error)) {
    if (typeof e.name === 'string' && REDIS_NAMES.has(e.name)) return true;
    if (typeof e.message === 'string' && REDIS_MESSAGES.some((p) => p.test(e.message as string))) return true;
  }
  return false;
}

/** Is `error` (or what it wraps) a failure to reach PostgreSQL, rather than a rejected statement? */
export function isDatabaseFailure(error: unknown): boolean {
  let orm = false;
  for (const e of chain(error)) {
    orm ||= typeof e.name === 'string' && /(Driver|Connection)Exception$/.test(e.name);
    orm ||= typeof e.port === 'number' && databasePorts.has(e.port);
    if (typeof e.code === 'string' && (DATABASE_STATES.test(e.code) || (orm && SOCKET_CODES.test(e.code)))) {
      return true;
    }
    if (typeof e.message === 'string' && DATABASE_MESSAGES.some((p) => p.test(e.message as string)))
      return true;
  }
  return false;
}

/**
 * The dependency failure behind an unexpected error, as a 503-mapped domain error, or null when
 * the error is something else (a bug, a rejected statement).
 */
export function dependencyFailure(error: unknown): DependencyUnavailable | null {
  if (error instanceof DependencyUnavailable) return error;
  if (error instanceof DomainError) return null;
  if (isRedisFailure(error)) return new DependencyUnavailable('redis');
  if (isDatabaseFailure(error)) return new DependencyUnavailable('database');
  return null;
}
