import type { PGlite } from '@electric-sql/pglite';
import { serialize } from 'pg-protocol';
import { type BackendMessage, ReadyForQueryMessage } from 'pg-protocol/dist/messages';
import { Parser } from 'pg-protocol/dist/parser';

/** One frontend message of a connection, waiting for the session. */
interface Waiting {
  handlerId: number;
  /** A wire-protocol message; null asks to end the connection's exchange (it disconnected). */
  message: Uint8Array | null;
  onData: (data: Uint8Array) => void;
  resolve: (bytes: number) => void;
  reject: (error: Error) => void;
}

/** A Terminate message ('X'): the client closes the connection; nothing is answered. */
const TERMINATE = 0x58;

/**
 * Follows the backend's reply to one message, message by message, across the chunks PGlite streams
 * (pg-protocol's parser, the one node-postgres uses), to tell whether it ended with `ReadyForQuery`
 * status idle.
 */
export class ReplyReader {
  private readonly parser = new Parser();
  /** Bytes pushed, and bytes of the whole messages parsed from them (type byte + int32 length). */
  private pushed = 0;
  private parsed = 0;
  private last: BackendMessage | undefined;

  /** Takes the next chunk of the reply, as PGlite streams it (any cut, even inside a message). */
  push(chunk: Uint8Array): void {
    this.pushed += chunk.length;
    // A copy: the parser may write later chunks into the buffer it keeps, and this one is the caller's.
    this.parser.parse(Buffer.from(chunk), (message) => {
      this.parsed += 1 + message.length;
      this.last = message;
    });
  }

  /** The reply ended with `ReadyForQuery` 'I': the session is between exchanges, outside a transaction. */
  get idle(): boolean {
    return (
      this.parsed === this.pushed && this.last instanceof ReadyForQueryMessage && this.last.status === 'I'
    );
  }
}

/**
 * Replaces pglite-socket's query queue (0.2.17): PGlite is ONE PostgreSQL session, so a connection
 * must have it to itself from its first message until the backend says the session is idle again
 * (`ReadyForQuery` with status 'I'), not only while a transaction is open.
 *
 * Why: pglite-socket queues each wire-protocol message on its own and pins the session to one
 * connection only while `isInTransaction()`. node-postgres sends a parameterised query as five
 * messages (Parse, Bind, Describe, Execute, Sync), and other connections' messages ran between
 * them. Seen in `bench:rag` on 20 documents (and replayed message by message on PGlite): connection A
 * (the usage ledger's INSERT) had its Parse run, then B's transaction ran (its simple queries drop
 * the unnamed statement), then A's Bind failed with "unnamed prepared statement does not exist";
 * PostgreSQL then skips every message until A's Sync, so C's `BEGIN` (an ingestion's swap), run
 * next, got no reply at all and C waited for ever: the ingestion queue stalled. Without an error,
 * A's parameters can be bound to another connection's statement and answer for it. Upstream:
 * electric-sql/pglite issue 1046 (open; 0.2.17 is the latest release).
 *
 * Here a message is taken from the connection that owns the session, else in arrival order; the
 * connection owns the session until a reply ends with ReadyForQuery 'I' (so through an extended-query
 * exchange up to its Sync, and through a transaction block up to its COMMIT or ROLLBACK). A message
 * that throws inside PGlite fails that connection (pglite-socket closes it) without stopping the
 * queue; a connection that closes while it owns the session has its exchange ended with a Sync and its
 * transaction rolled back, as a PostgreSQL backend does when its client goes away.
 *
 * The methods are the ones pglite-socket's connection handlers call.
 */
export class PgliteSessionQueue {
  private waiting: Waiting[] = [];
  /** The connection whose exchange with the session is under way, or null when the session is idle. */
  private owner: number | null = null;
  /** The connection whose message PGlite is running now. */
  private running: number | null = null;
  private draining = false;

  constructor(private readonly db: PGlite) {}

  /** Queues one message of connection `handlerId`; resolves with the reply's size in bytes once it ran. */
  enqueue(handlerId: number, message: Uint8Array, onData: (data: Uint8Array) => void): Promise<number> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ handlerId, message, onData, resolve, reject });
      void this.drain();
    });
  }

  /** Messages waiting (pglite-socket's `getStats`). */
  getQueueLength(): number {
    return this.waiting.length;
  }

  /** Drops a closed connection's waiting messages. */
  clearQueueForHandler(handlerId: number): void {
    const dropped = this.waiting.filter((w) => w.handlerId === handlerId);
    this.waiting = this.waiting.filter((w) => w.handlerId !== handlerId);
    for (const w of dropped) w.reject(new Error('Handler disconnected'));
  }

  /**
   * A connection closed: if it owned the session (an exchange or a transaction under way), end its
   * exchange and roll its transaction back, then serve the others.
   */
  clearTransactionIfNeeded(handlerId: number): Promise<void> {
    if (this.owner !== handlerId && this.running !== handlerId) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      // First in line: the session waits for nothing else of this connection.
      this.waiting.unshift({
        handlerId,
        message: null,
        onData: () => undefined,
        resolve: () => resolve(),
        reject,
      });
      void this.drain();
    });
  }

  private next(): Waiting | undefined {
    const i = this.owner === null ? 0 : this.waiting.findIndex((w) => w.handlerId === this.owner);
    return i < 0 || i >= this.waiting.length ? undefined : this.waiting.splice(i, 1)[0];
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let item = this.next(); item; item = this.next()) {
        this.running = item.handlerId;
        if (item.message === null) {
          await this.release();
          item.resolve(0);
          continue;
        }
        const reply = new ReplyReader();
        let bytes = 0;
        const { message, onData } = item;
        try {
          await this.db.runExclusive(() =>
            this.db.execProtocolRawStream(message, {
              onRawData: (data) => {
                bytes += data.length;
                reply.push(data);
                onData(data);
              },
            }),
          );
        } catch (e) {
          // The connection is failed and closed by its handler, which then releases the session.
          this.owner = item.handlerId;
          item.reject(e instanceof Error ? e : new Error(String(e)));
          continue;
        }
        // Terminate is not answered and changes nothing: the connection's close releases what it held.
        if (message[0] !== TERMINATE) this.owner = reply.idle ? null : item.handlerId;
        item.resolve(bytes);
      }
    } finally {
      this.running = null;
      this.draining = false;
    }
  }

  /** Ends the owner's exchange (Sync leaves any error state) and rolls back its transaction. */
  private async release(): Promise<void> {
    try {
      await this.db.runExclusive(async () => {
        await this.db.execProtocolRawStream(serialize.sync(), { onRawData: () => undefined });
        if (this.db.isInTransaction()) {
          await this.db.execProtocolRawStream(serialize.query('ROLLBACK'), { onRawData: () => undefined });
        }
      });
    } finally {
      this.owner = null;
    }
  }
}
