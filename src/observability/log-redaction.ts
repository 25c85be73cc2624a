import { stdSerializers } from 'pino';

/** Fields of database errors that hold SQL, bind parameters or row values (pg, MikroORM). */
const DATABASE_CONTENT_FIELDS = ['sql', 'query', 'params', 'parameters', 'detail', 'where', 'internalQuery'];

/** A database error: pg's (`severity`, `routine`) or a MikroORM DriverException (`…Exception` with a SQLSTATE). */
function isDatabaseError(err: Record<string, unknown>): boolean {
  if (typeof err.routine === 'string' && typeof err.severity === 'string') return true;
  return (
    typeof err.name === 'string' &&
    err.name.endsWith('Exception') &&
    (typeof err.sqlState === 'string' || (typeof err.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code)))
  );
}

/**
 * The `err` serializer of every log line. Database errors carry the SQL with its bound values in their
 * message (MikroORM: `insert into "messages" ... values ('<the user's message>') - <reason>`) and row
 * values in `detail`; unless `logContent` (LOG_MESSAGE_CONTENT=true) those are dropped: the line keeps
 * the error type, SQLSTATE code, routine, constraint, table, column and the stack frames.
 */
export function errorSerializer(logContent: boolean): (err: unknown) => unknown {
  return (err: unknown) => {
    const serialized = stdSerializers.err(err as Error) as unknown as Record<string, unknown>;
    if (logContent || typeof err !== 'object' || err === null) return serialized;
    if (!isDatabaseError(err as Record<string, unknown>)) return serialized;
    const out: Record<string, unknown> = { ...serialized };
    for (const field of DATABASE_CONTENT_FIELDS) delete out[field];
    const name = (err as { name?: unknown }).name;
    out.type = typeof name === 'string' ? name : 'DatabaseError';
    const code = (err as { code?: unknown }).code;
    const routine = (err as { routine?: unknown }).routine;
    out.message =
      `database error${typeof code === 'string' ? ` ${code}` : ''}` +
      `${typeof routine === 'string' ? ` (${routine})` : ''}; statement and values not logged (LOG_MESSAGE_CONTENT=false)`;
    if (typeof out.stack === 'string') {
      out.stack = [
        `${out.type as string}: ${out.message as string}`,
        ...out.stack.split('\n').filter((line) => /^\s+at /.test(line)),
      ].join('\n');
    }
    return out;
  };
}
