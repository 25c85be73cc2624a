/**
 * Splits a cached answer into the deltas a replayed stream sends: one word each, with the
 * whitespace before it, so that the deltas join back to the answer byte for byte and a client
 * sees the same kind of events as from a live stream (a live stream's deltas are engine tokens,
 * which are about word-sized).
 */
export function replayDeltas(content: string): string[] {
  return content.match(/\s*\S+|\s+$/g) ?? [];
}
