import { createHash } from 'node:crypto';

/** The running digest of no messages. */
export const EMPTY_MESSAGES_DIGEST = '';

/**
 * One step of a running digest over chat messages: `sha256(previous, NUL, role, NUL, content)`, hex,
 * 32 characters (128 bits). Equal digests mean equal message sequences (roles and contents, in order),
 * so a conversation's digest after its n-th message is computed from the digest after its (n-1)-th
 * alone: a turn digests only its new messages, whatever the conversation's length.
 * @param previous the digest of the messages before (EMPTY_MESSAGES_DIGEST for the first)
 */
export function nextMessageDigest(previous: string, role: string, content: string): string {
  return createHash('sha256')
    .update(previous)
    .update('\u0000')
    .update(role)
    .update('\u0000')
    .update(content, 'utf8')
    .digest('hex')
    .slice(0, 32);
}

/** The running digest of `messages` (`nextMessageDigest` over each, in order). */
export function messagesDigest(messages: readonly { role: string; content: string }[]): string {
  let digest = EMPTY_MESSAGES_DIGEST;
  for (const m of messages) digest = nextMessageDigest(digest, m.role, m.content);
  return digest;
}
