import { IsInt, IsJSON, IsOptional, Max, Min } from 'class-validator';

/** The usage ledger: batching into the `usage` queue, the writer, rollups and prices. */
export class UsageConfig {
  /** Records per `usage` job (one job = one INSERT); a full batch is queued at once. */
  @IsInt() @Min(1) @Max(5000) USAGE_BATCH_SIZE: number = 1000;
  /** Longest a record waits in memory before its batch is queued, ms (the loss window of a hard kill). */
  @IsInt() @Min(1) USAGE_FLUSH_MS: number = 200;
  /** Records kept in memory while Redis cannot take them; past it the oldest are dropped and counted. */
  @IsInt() @Min(1000) USAGE_BUFFER_MAX: number = 200_000;
  /** How often the daily rollup folds new records into `usage_daily`, seconds. */
  @IsInt() @Min(1) USAGE_ROLLUP_INTERVAL_SECONDS: number = 60;
  /**
   * Prices, USD per million tokens, by model: `{"<model>": {"input": 3, "cachedInput": 0.3, "output": 15}}`
   * (`cachedInput` defaults to `input`). Unlisted models cost 0. The model catalogue replaces this.
   */
  @IsOptional() @IsJSON() USAGE_PRICES?: string;
}
