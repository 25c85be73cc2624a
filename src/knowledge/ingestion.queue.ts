/** Bull queue of document ingestions. */
export const INGESTION_QUEUE = 'ingestion';

/** Job name: parse, chunk, embed and store one upload of a document. */
export const INGEST_JOB = 'ingest';

/** Data of an `ingest` job; the job id is the ingestion id, so queueing it twice is a no-op. */
export interface IngestJobData {
  tenantId: string;
  ingestionId: string;
}
