import type { UsageRow } from './usage.types';

/** Bull queue of usage batches and the daily rollup. */
export const USAGE_QUEUE = 'usage';

/** Job name: insert a batch of records. */
export const USAGE_WRITE_JOB = 'write';

/** Job name (repeatable): fold new records into `usage_daily`. */
export const USAGE_ROLLUP_JOB = 'rollup';

/** Data of a `write` job: up to USAGE_BATCH_SIZE priced records. */
export interface UsageWriteJobData {
  records: UsageRow[];
}
