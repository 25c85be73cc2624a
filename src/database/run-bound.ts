import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * Runs one statement with its values as bind parameters: knex turns each `?` into `$n` and the pg driver
 * sends the values apart from the SQL text. MikroORM's `execute()` would instead escape every value into
 * the text (sqlstring over each message and JSON column), which was ~7 % of an api process's allocations
 * at load on the turn's write (docs/scaling.md, "Eighth pass"). Used by the turn's read and write. The
 * statement is still reported to MikroORM's logger, as `execute()` reports it (DB_DEBUG; bench:turn counts
 * statements there).
 * @returns the driver's rows and row count
 * @throws the driver's error as it is (a pg error with its SQLSTATE `code`), not MikroORM's wrapper
 */
export async function runBound<T>(
  em: EntityManager,
  sql: string,
  params: readonly unknown[],
): Promise<{ rows: T[]; rowCount: number }> {
  const started = Date.now();
  const logger = em.config.getLogger();
  try {
    const result = await em
      .getConnection()
      .getKnex()
      .raw<{ rows: T[]; rowCount: number | null }>(sql, params as never);
    logger.logQuery({
      query: sql,
      params: [...params],
      took: Date.now() - started,
      results: result.rows.length,
    });
    return { rows: result.rows, rowCount: result.rowCount ?? 0 };
  } catch (e) {
    logger.logQuery({ query: sql, params: [...params], took: Date.now() - started, level: 'error' });
    throw e;
  }
}
