import { createHash } from 'node:crypto';
import { EMPTY_MESSAGES_DIGEST, messagesDigest } from '../common/message-digest';
import { normalizeQuestion } from './question-features';
import type { ResponseCacheScope } from './response-cache.types';

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** JSON with object keys sorted and `undefined` members dropped, so equal values hash equally. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value))
    return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** The context a first question has: nothing before it. */
export const NO_CONTEXT = 'none';

/**
 * Fingerprint of the conversation context an answer depends on: the earlier messages (role and
 * content, in order), a rolling summary and per-turn context (date, retrieved passages). A first
 * question with no per-turn context has the fingerprint `none`, so first questions of different
 * conversations share answers; a later question shares only with the same history.
 *
 * The history enters as its running digest (`messagesDigest`, src/common/message-digest.ts). A caller
 * that keeps that digest from turn to turn (a conversation's turn, PromptChainService) passes
 * `historyDigest` instead of `history`, so the fingerprint costs the same at turn 2 and at turn 200.
 * @returns 32 hex characters, or NO_CONTEXT
 */
export function contextFingerprint(context: {
  /** The earlier messages; or their digest in `historyDigest` (EMPTY_MESSAGES_DIGEST = none). */
  history?: readonly { role: string; content: string }[];
  historyDigest?: string;
  summary?: string;
  volatileContext?: string;
}): string {
  const history = context.historyDigest ?? messagesDigest(context.history ?? []);
  if (history === EMPTY_MESSAGES_DIGEST && !context.summary && !context.volatileContext) return NO_CONTEXT;
  return sha256(
    canonicalJson({
      v: 2,
      history,
      summary: context.summary ?? null,
      volatile: context.volatileContext ?? null,
    }),
  ).slice(0, 32);
}

/** Fingerprint of a scope (hex, 32 characters): the part of every cache key that is not the question. */
export function scopeFingerprint(scope: ResponseCacheScope): string {
  return sha256(
    canonicalJson({
      v: 1,
      tenant: scope.tenantId,
      agent: scope.agent,
      model: scope.model,
      template: scope.templateVersion,
      params: scope.params,
      context: scope.context,
    }),
  ).slice(0, 32);
}

/** Hash of the normalised question (hex, 32 characters): the exact-match part of the key. */
export function questionHash(question: string): string {
  return sha256(normalizeQuestion(question)).slice(0, 32);
}
