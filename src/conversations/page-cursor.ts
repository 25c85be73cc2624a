import { InvalidRequest } from '../common/domain-error';

/** Largest `sequence` a message can have (PostgreSQL `integer`). */
const MAX_SEQUENCE = 2_147_483_647;
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An opaque page cursor: its parts joined by `|`, base64url. */
export const encodeCursor = (parts: (string | number)[]): string =>
  Buffer.from(parts.join('|')).toString('base64url');

const decodeCursor = (cursor: string): string[] =>
  Buffer.from(cursor, 'base64url').toString('utf8').split('|');

const invalid = (): InvalidRequest =>
  new InvalidRequest('cursor is not a valid cursor; pass the nextCursor of the previous page.', {
    field: 'cursor',
  });

/**
 * The position in the conversation list a cursor stands for: `(createdAt, id)` of the last item seen, as
 * `encodeCursor([createdAt.toISOString(), id])` wrote it. Anything else (another shape, a date outside
 * 0000-9999, an id that is not a UUID) is rejected before it reaches the database.
 * @throws InvalidRequest (400) naming `cursor`
 */
export function decodeConversationCursor(cursor: string): { createdAt: Date; id: string } {
  const parts = decodeCursor(cursor);
  if (parts.length !== 2 || !ISO_INSTANT.test(parts[0]) || !UUID.test(parts[1])) throw invalid();
  const createdAt = new Date(parts[0]);
  if (Number.isNaN(createdAt.getTime())) throw invalid();
  return { createdAt, id: parts[1] };
}

/**
 * The last message sequence a messages cursor stands for (`encodeCursor([sequence])`).
 * @throws InvalidRequest (400) naming `cursor` unless it is an integer in 0..2^31-1
 */
export function decodeMessageCursor(cursor: string): number {
  const parts = decodeCursor(cursor);
  if (parts.length !== 1 || !/^\d{1,10}$/.test(parts[0])) throw invalid();
  const sequence = Number(parts[0]);
  if (sequence > MAX_SEQUENCE) throw invalid();
  return sequence;
}
