import os from "node:os";
import { sql } from "kysely";
import type { Logger } from "pino";
import type { Db } from "../db";
import { nowIso } from "../ids";

// Per-listener traffic counters of one worker process. The edge bumps plain numbers in memory (no I/O on
// the hot path); every few seconds, and when the edge stops, this worker's cumulative totals are upserted
// into listener_counters under its own worker_id. /metrics sums the rows of every worker, so several edges
// add up. Rows of workers that have exited are kept: a restart starts a new row at zero instead of
// resetting a shared one, so the sums never go backwards. Rows older than 30 days whose listener no longer
// exists are pruned.

export type ListenerCounts = {
  handshakes: number;
  handshakeErrors: number;
  fallbackServed: number;
  requests: number;
  upstreamErrors: number;
};

export const FLUSH_INTERVAL_MS = 5_000;
const PRUNE_AFTER_MS = 30 * 24 * 60 * 60_000;
const PRUNE_INTERVAL_MS = 60 * 60_000;
/** The columns are 32-bit integers on PostgreSQL: a row that would pass this goes on in a new row instead. */
const ROW_LIMIT = 2_000_000_000;

let processStartedAt: number | undefined;

/** Stable for the life of this process, and unique across hosts and restarts: host, pid and start time. */
export function defaultWorkerId(): string {
  processStartedAt ??= Date.now();
  return `${os.hostname()}:${process.pid}:${new Date(processStartedAt).toISOString()}`;
}

const zero = (): ListenerCounts => ({ handshakes: 0, handshakeErrors: 0, fallbackServed: 0, requests: 0, upstreamErrors: 0 });
const minus = (a: ListenerCounts, b: ListenerCounts): ListenerCounts => ({
  handshakes: a.handshakes - b.handshakes,
  handshakeErrors: a.handshakeErrors - b.handshakeErrors,
  fallbackServed: a.fallbackServed - b.fallbackServed,
  requests: a.requests - b.requests,
  upstreamErrors: a.upstreamErrors - b.upstreamErrors,
});

export class ListenerCounterStore {
  private readonly counts = new Map<string, ListenerCounts>();
  /** What was last written for each listener, to skip rows that have not changed. */
  private readonly flushed = new Map<string, string>();
  /** The totals last stored for each listener. */
  private readonly lastWritten = new Map<string, ListenerCounts>();
  /** Per listener: which row this worker writes now (0, 1, …), and the totals the earlier rows hold. */
  private readonly segments = new Map<string, { segment: number; base: ListenerCounts }>();
  private flushing?: Promise<void>;
  private flushAgain = false;
  private timer?: NodeJS.Timeout;
  private lastPruneAt = 0;

  constructor(
    private readonly db: Db,
    readonly workerId: string = defaultWorkerId(),
    private readonly log?: Logger,
  ) {}

  /** The live counters of one listener; the same object for the life of the store. */
  for(listenerId: string): ListenerCounts {
    let counts = this.counts.get(listenerId);
    if (!counts) this.counts.set(listenerId, (counts = zero()));
    return counts;
  }

  /** A copy of every listener's totals in this process (for tests and health output). */
  snapshot(): Record<string, ListenerCounts> {
    return Object.fromEntries([...this.counts].map(([id, c]) => [id, { ...c }]));
  }

  start(intervalMs = FLUSH_INTERVAL_MS) {
    this.timer ??= setInterval(() => void this.flush().catch((err: unknown) => this.log?.warn({ err }, "edge: could not save listener counters; retrying")), intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and writes the final totals. */
  async stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  /** Writes this worker's totals; one flush at a time (a call during one runs once more after it). */
  flush(): Promise<void> {
    if (this.flushing) {
      this.flushAgain = true;
      return this.flushing;
    }
    this.flushing = (async () => {
      try {
        do {
          this.flushAgain = false;
          await this.writeChanged();
        } while (this.flushAgain);
        if (Date.now() - this.lastPruneAt > PRUNE_INTERVAL_MS) {
          this.lastPruneAt = Date.now();
          await pruneListenerCounters(this.db);
        }
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  private async writeChanged() {
    const at = nowIso();
    for (const [listenerId, live] of this.counts) {
      const total = { ...live };
      const key = `${total.handshakes}|${total.handshakeErrors}|${total.fallbackServed}|${total.requests}|${total.upstreamErrors}`;
      if (this.flushed.get(listenerId) === key) continue;
      let place = this.segments.get(listenerId);
      if (!place) this.segments.set(listenerId, (place = { segment: 0, base: zero() }));
      let c = minus(total, place.base);
      if (Object.values(c).some((v) => v > ROW_LIMIT)) {
        // The current row keeps what it last had; the rest goes into a new row of this worker.
        place.base = this.lastWritten.get(listenerId) ?? zero();
        place.segment++;
        c = minus(total, place.base);
      }
      const workerId = place.segment ? `${this.workerId}#${place.segment}` : this.workerId;
      const values = {
        handshakes: c.handshakes,
        handshake_errors: c.handshakeErrors,
        fallback_served: c.fallbackServed,
        requests: c.requests,
        upstream_errors: c.upstreamErrors,
        updated_at: at,
      };
      // Absolute totals, not increments: a flush that is repeated after a failure cannot count twice.
      await this.db
        .insertInto("listener_counters")
        .values({ worker_id: workerId, listener_id: listenerId, ...values })
        .onConflict((oc) => oc.columns(["worker_id", "listener_id"]).doUpdateSet(values))
        .execute();
      this.flushed.set(listenerId, key);
      this.lastWritten.set(listenerId, total);
    }
  }
}

/** Deletes counter rows not updated for 30 days whose listener has been deleted. */
export async function pruneListenerCounters(db: Db, now: Date = new Date()): Promise<number> {
  const result = await db
    .deleteFrom("listener_counters")
    .where("updated_at", "<", nowIso(new Date(now.getTime() - PRUNE_AFTER_MS)))
    .where(({ not, exists, selectFrom }) => not(exists(selectFrom("listeners").select(sql`1`.as("one")).whereRef("listeners.id", "=", "listener_counters.listener_id"))))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
