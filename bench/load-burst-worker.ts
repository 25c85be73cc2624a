import { parentPort, workerData } from 'node:worker_threads';
import { Client } from './load-client';

/** One turn of a burst, planned by the main thread. */
export interface PlannedTurn {
  url: string;
  conversationId: string;
  content: string;
  tag: string;
}

/** What a burst client thread is given (its `workerData`). */
export interface BurstWork {
  apiKey: string;
  maxTokens: number;
  giveUpMs: number;
  turns: PlannedTurn[];
}

/**
 * A burst client thread (`bench:load --burst N --client-threads T`): posts its share of the burst's turns
 * at once, on its own event loop and connections, when the main thread says `go`, and posts back their
 * samples. It says `ready` first, so every thread starts together.
 */
if (parentPort) {
  const port = parentPort;
  const work = workerData as BurstWork;
  const client = new Client(Math.max(1, work.turns.length));
  port.once('message', () => {
    void Promise.all(
      work.turns.map((t) =>
        client.turn(t.url, work.apiKey, t.conversationId, t.content, t.tag, work.maxTokens, work.giveUpMs),
      ),
    ).then(async (samples) => {
      await client.close();
      port.postMessage(samples);
    });
  });
  port.postMessage('ready');
}
