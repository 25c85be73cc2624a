import type { ChatUsage, ToolCall } from '../inference/inference.types';

/**
 * Per-request cache control, in the spirit of HTTP's Cache-Control:
 * - `default`: answer from the cache when possible, store a fresh answer;
 * - `no-cache`: do not answer from the cache (always the engine), but store the fresh answer;
 * - `no-store`: answer from the cache when possible, never store this answer;
 * - `bypass`: neither read nor write the cache.
 */
export type CacheMode = 'default' | 'no-cache' | 'no-store' | 'bypass';
export const CACHE_MODES: readonly CacheMode[] = ['default', 'no-cache', 'no-store', 'bypass'];

/** What a request asks of the response cache. */
export interface CacheControl {
  mode?: CacheMode;
  /** Serve only answers at most this old, seconds (stricter than the configured TTL, never looser). */
  maxAgeSeconds?: number;
}

/**
 * Everything besides the question that changes the answer. Two requests share cached answers only
 * when every field is equal; its fingerprint is part of every cache key.
 */
export interface ResponseCacheScope {
  tenantId: string;
  /** Agent that answers (or `chat-completions` for the stateless OpenAI-compatible endpoint). */
  agent: string;
  /** Model the engine serves. */
  model: string;
  /** Prompt template version (the stable prefix). */
  templateVersion: string;
  /** Generation parameters that change the answer (temperature, max tokens, stop, seed, ...). */
  params: Record<string, unknown>;
  /** Fingerprint of the conversation context the answer depends on; `none` for a first question. */
  context: string;
}

/** A cached answer as stored. */
export interface CachedAnswer {
  entryId: string;
  tenantId: string;
  /** Scope fingerprint. */
  scope: string;
  agent: string;
  model: string;
  templateVersion: string;
  /** The question as first asked. */
  question: string;
  content: string;
  finishReason: string;
  /**
   * The tool calls the answer made (`finishReason` `tool_calls`; the OpenAI-compatible endpoint, whose
   * scope fingerprint holds the tool set, so they replay only to the identical tool set).
   */
  toolCalls?: ToolCall[];
  /** Usage of the engine call that produced it, tokens. */
  usage: ChatUsage;
  /** When it was stored, ms since the epoch. */
  createdAt: number;
  /**
   * Ids of the knowledge documents the answer cited (its passages); the versions cited are part of
   * the scope's context fingerprint. When one of them changes or is deleted the entry is purged
   * (`ResponseCacheAdmin.invalidateDocument`). Absent: the answer cited nothing.
   */
  documents?: string[];
}

/** Which guard rejected a semantic candidate, and why (for logs, traces and the benchmark). */
export interface GuardRejection {
  guard: string;
  reason: string;
  similarity: number;
  entryId: string;
}

/** The response-cache part of a turn's cache report (`Message.cache.response`). */
export interface ResponseCacheReport {
  hit: boolean;
  type?: 'exact' | 'semantic';
  /** Cosine similarity of a semantic hit (0..1). */
  similarity?: number;
  entryId?: string;
  /** Guard that rejected the nearest close-but-different candidate, on a miss. */
  guard?: string;
}

/** The outcome of a lookup. */
export type LookupResult =
  | { hit: true; type: 'exact' | 'semantic'; answer: CachedAnswer; similarity: number }
  | { hit: false; rejection?: GuardRejection; embedding?: readonly number[] };
