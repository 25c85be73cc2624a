/**
 * Keeps a label's value set bounded: the first `max` distinct values pass, later ones become
 * `overflow`. Each label value is a time series in Prometheus, so a value that comes from outside
 * (an agent name on a conversation, an error code, a replica URL) must never grow without bound.
 */
export class BoundedLabel {
  private readonly seen = new Set<string>();

  constructor(
    private readonly max: number,
    private readonly overflow = 'other',
  ) {}

  /** The label value for `raw`: `raw` itself, `unknown` when empty, or `overflow` past `max` distinct values. */
  value(raw: string | null | undefined): string {
    if (raw === null || raw === undefined || raw === '') return 'unknown';
    if (this.seen.has(raw)) return raw;
    if (this.seen.size >= this.max) return this.overflow;
    this.seen.add(raw);
    return raw;
  }
}

/** Label value for an identifier-like string (agent, code): `[A-Za-z0-9_.:-]`, at most 64 characters. */
export function safeName(raw: string | null | undefined): string | undefined {
  return raw && /^[\w.:-]{1,64}$/.test(raw) ? raw : undefined;
}
