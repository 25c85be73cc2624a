import { Transform } from 'class-transformer';
import { IsBoolean, IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';
import { toBoolean } from './config.loader';

/** PostgreSQL (external) or embedded PGlite. */
export class DatabaseConfig {
  /** External PostgreSQL URL (`postgres://user:pass@host:5432/db`). Unset = embedded PGlite with pgvector. */
  @IsOptional()
  @Matches(/^postgres(ql)?:\/\//, { message: 'must be a postgres:// or postgresql:// URL' })
  DATABASE_URL?: string;
  /** Directory for embedded data (PGlite files, generated secret). */
  @IsString() DATA_DIR = '.data';
  /**
   * Loopback port on which the embedded database is served while the service runs, so the CLI
   * (`npm run keys:create`) and psql can reach it. 0 = any free port (the CLI then opens the data dir itself).
   */
  @IsInt() @Min(0) @Max(65535) EMBEDDED_DB_PORT = 54329;
  /** Apply pending migrations at boot. */
  @Transform(toBoolean) @IsBoolean() DB_MIGRATE_ON_BOOT = true;
  /** Connection pool size. */
  @IsInt() @Min(1) DB_POOL_MAX = 20;
  @Transform(toBoolean) @IsBoolean() DB_DEBUG = false;
}
