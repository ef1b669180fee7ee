import type { Db } from "../db";
import { followEvents, type EventFilter } from "./feed";
import type { EventView } from "./index";

// The body of GET /api/v1/events/stream: Server-Sent Events over the change feed. Kept out of the
// route so that it can be tested without Next.js.

export const EVENT_STREAM_HEADERS = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache, no-transform",
  "X-Accel-Buffering": "no",
} as const;

export const HEARTBEAT_MS = 15_000;
export const RETRY_MS = 2_000;

/** One SSE message. The data is one line of JSON, so it needs no splitting. */
export function formatSseEvent(event: EventView): string {
  return `id: ${event.id}\nevent: event\ndata: ${JSON.stringify(event)}\n\n`;
}

export type EventStreamOptions = {
  after: number;
  filter?: EventFilter;
  signal: AbortSignal;
  heartbeatMs?: number;
  /** Checked at every heartbeat: a caller whose access was withdrawn loses the stream. */
  stillAllowed?: () => Promise<boolean>;
  onError?: (err: unknown) => void;
};

/**
 * The stream starts with the reconnection delay and a `ready` message whose id is the starting
 * cursor (so that a reconnect resumes there even before the first event), then one `event`
 * message per event, and a comment line as a heartbeat.
 */
export function eventStream(db: Db, opts: EventStreamOptions): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let finish = () => {};
  return new ReadableStream<Uint8Array>({
    start(controller) {
      let done = false;
      const send = (text: string) => {
        if (!done) controller.enqueue(encoder.encode(text));
      };
      const heartbeat = setInterval(() => {
        send(": heartbeat\n\n");
        opts.stillAllowed?.().then(
          (ok) => ok || finish(),
          () => {},
        );
      }, opts.heartbeatMs ?? HEARTBEAT_MS);
      heartbeat.unref();
      finish = () => {
        if (done) return;
        done = true;
        clearInterval(heartbeat);
        stop();
        opts.signal.removeEventListener("abort", finish);
        try {
          controller.close();
        } catch {
          // already closed or cancelled by the client
        }
      };
      send(`retry: ${RETRY_MS}\n\n`);
      send(`id: ${opts.after}\nevent: ready\ndata: ${JSON.stringify({ cursor: opts.after })}\n\n`);
      const stop = followEvents(db, {
        after: opts.after,
        filter: opts.filter,
        onEvents: (events) => send(events.map(formatSseEvent).join("")),
        onError: opts.onError,
        onClose: () => finish(),
      });
      if (opts.signal.aborted) finish();
      else opts.signal.addEventListener("abort", finish);
    },
    cancel() {
      finish();
    },
  });
}
