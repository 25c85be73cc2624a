import type { DraftChunk } from './chunker';

/** A stored chunk of the served version, as the diff sees it. */
export interface StoredChunk {
  id: string;
  contentHash: string;
  /** Whether the current embedding model's vector of this chunk is stored. */
  hasEmbedding: boolean;
}

/** How a new version replaces the served one, chunk by chunk. */
export interface ReingestionPlan {
  /** Stored chunks that stay (same content hash), with the draft they now stand for. */
  keep: { id: string; draft: DraftChunk }[];
  /** Drafts with no stored twin: new rows. */
  insert: DraftChunk[];
  /** Stored chunks with no draft left: deleted (their vectors with them). */
  remove: string[];
  /** For each content hash whose vector is stored, a stored chunk that has it (to copy from). */
  embeddingSources: Map<string, string>;
  /** One draft per content hash that has no stored vector: the texts to embed, in document order. */
  toEmbed: DraftChunk[];
}

/**
 * Diffs a new version's chunks against the stored ones by content hash (a multiset match, in
 * document order): identical chunks are kept with their embeddings, the rest are inserted or
 * removed, and only content hashes with no stored vector are embedded. Re-ingesting unchanged
 * content therefore embeds nothing, and editing one section embeds only that section's chunks.
 */
export function planReingestion(
  stored: readonly StoredChunk[],
  drafts: readonly DraftChunk[],
): ReingestionPlan {
  const byHash = new Map<string, StoredChunk[]>();
  const embeddingSources = new Map<string, string>();
  for (const s of stored) {
    const list = byHash.get(s.contentHash) ?? [];
    list.push(s);
    byHash.set(s.contentHash, list);
    if (s.hasEmbedding && !embeddingSources.has(s.contentHash)) embeddingSources.set(s.contentHash, s.id);
  }
  const keep: ReingestionPlan['keep'] = [];
  const insert: DraftChunk[] = [];
  for (const draft of drafts) {
    const twin = byHash.get(draft.contentHash)?.shift();
    if (twin) keep.push({ id: twin.id, draft });
    else insert.push(draft);
  }
  const remove = [...byHash.values()].flat().map((s) => s.id);
  const toEmbed: DraftChunk[] = [];
  const queued = new Set<string>();
  for (const draft of drafts) {
    if (embeddingSources.has(draft.contentHash) || queued.has(draft.contentHash)) continue;
    queued.add(draft.contentHash);
    toEmbed.push(draft);
  }
  return { keep, insert, remove, embeddingSources, toEmbed };
}
