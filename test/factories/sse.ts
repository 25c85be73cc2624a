import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** A parsed Server-Sent Event with its JSON data. */
export interface SseEvent {
  event: string;
  data: any;
}

/**
 * POSTs `body` and collects the SSE events of the response.
 * @param onEvent called for each event as it arrives (e.g. to abort mid-stream)
 */
export async function postSse(
  url: string,
  key: string,
  body: unknown,
  options: { signal?: AbortSignal; onEvent?: (e: SseEvent) => void; headers?: Record<string, string> } = {},
): Promise<{ status: number; contentType: string; headers: Headers; events: SseEvent[]; text: string }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'text/event-stream',
      authorization: `Bearer ${key}`,
      ...options.headers,
    },
    body: JSON.stringify(body),
    signal: options.signal,
  });
  const events: SseEvent[] = [];
  const parser = createParser({
    onEvent: (m: EventSourceMessage) => {
      let data: unknown = m.data;
      try {
        data = JSON.parse(m.data);
      } catch {
        // `[DONE]` and other non-JSON data stay strings
      }
      const e = { event: m.event ?? 'message', data };
      events.push(e);
      options.onEvent?.(e);
    },
  });
  let text = '';
  const decoder = new TextDecoder();
  if (response.body) {
    for await (const chunk of response.body) {
      const s = decoder.decode(chunk as Uint8Array, { stream: true });
      text += s;
      parser.feed(s);
    }
  }
  return {
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    headers: response.headers,
    events,
    text,
  };
}
