import pg from "pg";
import type { Db } from "../db";
import { databaseKind, postgresUrl } from "../db/connection";
import type { EventSeverity } from "../db/schema";
import { EVENTS_CHANNEL, latestEventId, listEvents, MAX_EVENT_PAGE, type EventView } from "./index";

// The process-wide change feed: one per database, shared by every subscriber in the process (SSE
// streams in the console, the engine in the worker). It only says "something may have changed";
// each subscriber reads the events after its own cursor. PostgreSQL: one dedicated connection that
// LISTENs to the channel recordEvent notifies; while it is down, polling. SQLite: one poller of
// max(id). Nothing runs while nobody is subscribed.

export const POLL_INTERVAL_MS = 150;
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 10_000;

export type FeedMode = "idle" | "listen" | "poll";
export type FeedStats = { mode: FeedMode; subscribers: number; polls: number; connects: number };

type Subscriber = { onWake: () => void; onClose?: () => void };

class EventFeed {
  private readonly subscribers = new Set<Subscriber>();
  /** Bumped on every stop, so that late callbacks of a stopped poller or connection do nothing. */
  private generation = 0;
  private mode: FeedMode = "idle";
  private pollTimer?: NodeJS.Timeout;
  private pollRunning = false;
  private lastMax?: number;
  private client?: pg.Client;
  private reconnectTimer?: NodeJS.Timeout;
  private reconnectDelay = RECONNECT_MIN_MS;
  private polls = 0;
  private connects = 0;

  constructor(
    private readonly db: Db,
    private readonly listenUrl: string | undefined,
  ) {}

  subscribe(subscriber: Subscriber): () => void {
    this.subscribers.add(subscriber);
    if (this.subscribers.size === 1) this.start();
    return () => {
      if (!this.subscribers.delete(subscriber)) return;
      if (this.subscribers.size === 0) this.stop();
    };
  }

  stats(): FeedStats {
    return { mode: this.mode, subscribers: this.subscribers.size, polls: this.polls, connects: this.connects };
  }

  /** Ends every subscription (process shutdown): each subscriber hears onClose. */
  close() {
    const subscribers = [...this.subscribers];
    this.subscribers.clear();
    this.stop();
    for (const s of subscribers) {
      try {
        s.onClose?.();
      } catch {
        // a subscriber's failure is its own
      }
    }
  }

  private start() {
    activeFeeds().add(this);
    if (this.listenUrl) void this.listen(this.generation);
    else this.startPolling();
  }

  private stop() {
    activeFeeds().delete(this);
    this.generation++;
    this.mode = "idle";
    this.stopPolling();
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.reconnectDelay = RECONNECT_MIN_MS;
    const client = this.client;
    this.client = undefined;
    client?.end().catch(() => {});
  }

  private wake() {
    for (const s of [...this.subscribers]) {
      try {
        s.onWake();
      } catch {
        // a subscriber's failure is its own
      }
    }
  }

  private async listen(generation: number) {
    const client = new pg.Client({ connectionString: this.listenUrl, keepAlive: true, connectionTimeoutMillis: 5000 });
    this.client = client;
    const dropped = () => {
      if (generation !== this.generation || this.client !== client) return;
      this.client = undefined;
      client.end().catch(() => {});
      this.fallBack(generation);
    };
    client.on("error", dropped);
    client.on("end", dropped);
    client.on("notification", (message) => {
      if (message.channel === EVENTS_CHANNEL && generation === this.generation) this.wake();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${EVENTS_CHANNEL}`);
    } catch {
      dropped();
      return;
    }
    if (generation !== this.generation || this.client !== client) {
      client.end().catch(() => {});
      return;
    }
    this.connects++;
    this.reconnectDelay = RECONNECT_MIN_MS;
    this.stopPolling();
    this.mode = "listen";
    // Whatever was recorded while nobody listened is read now.
    this.wake();
  }

  /** The LISTEN connection is down: poll until it is back, and try again with backoff. */
  private fallBack(generation: number) {
    this.mode = "poll";
    this.startPolling();
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (generation === this.generation) void this.listen(generation);
    }, this.reconnectDelay);
    this.reconnectTimer.unref();
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, RECONNECT_MAX_MS);
  }

  private startPolling() {
    if (this.pollTimer) return;
    this.mode = "poll";
    this.lastMax = undefined;
    this.pollTimer = setInterval(() => void this.poll(), POLL_INTERVAL_MS);
    this.pollTimer.unref();
    void this.poll();
  }

  private stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }

  private async poll() {
    if (this.pollRunning) return;
    this.pollRunning = true;
    const generation = this.generation;
    try {
      this.polls++;
      const max = await latestEventId(this.db);
      if (generation !== this.generation || !this.pollTimer) return;
      // The first poll always wakes: subscribers catch up on what happened before it.
      if (max !== this.lastMax) {
        this.lastMax = max;
        this.wake();
      }
    } catch {
      // the database is unreachable for now; the next tick tries again
    } finally {
      this.pollRunning = false;
    }
  }
}

type FeedRegistry = { byDb: WeakMap<Db, EventFeed>; active: Set<EventFeed> };
// On globalThis: Next's bundle and server.ts load this module separately but must share feeds.
const registry = () => ((globalThis as { __portcullisEventFeeds?: FeedRegistry }).__portcullisEventFeeds ??= { byDb: new WeakMap(), active: new Set() });
const activeFeeds = () => registry().active;

function feedFor(db: Db): EventFeed {
  const { byDb } = registry();
  let feed = byDb.get(db);
  if (!feed) {
    feed = new EventFeed(db, databaseKind(db) === "postgres" ? postgresUrl(db) : undefined);
    byDb.set(db, feed);
  }
  return feed;
}

/**
 * Calls onWake soon after any event is recorded in this database, by this process or another
 * (within ~200 ms on SQLite, at once on PostgreSQL), and sometimes when nothing changed. Returns
 * the unsubscribe function; the last one to leave stops the polling or the LISTEN connection.
 */
export function subscribeEvents(db: Db, onWake: () => void, onClose?: () => void): () => void {
  return feedFor(db).subscribe({ onWake, onClose });
}

export function eventFeedStats(db: Db): FeedStats {
  return feedFor(db).stats();
}

/** Process shutdown: ends every feed and tells each subscriber (open SSE streams end at once). */
export function closeEventFeeds() {
  for (const feed of [...activeFeeds()]) feed.close();
}

export type EventFilter = { certificateId?: string; listenerId?: string; type?: string; severity?: EventSeverity };

export function eventMatches(event: EventView, filter: EventFilter): boolean {
  return (
    (!filter.certificateId || event.certificateId === filter.certificateId) &&
    (!filter.listenerId || event.listenerId === filter.listenerId) &&
    (!filter.type || event.type === filter.type) &&
    (!filter.severity || event.severity === filter.severity)
  );
}

// PostgreSQL hands out ids at insert but commits in any order: id 11 may be visible before id 10.
// A reader remembers such holes for a while and delivers their events when they appear.
const GAP_GRACE_MS = 5_000;
const MAX_TRACKED_GAP = 100;
const GAP_RECHECK_MS = 250;

export type FollowOptions = {
  /** Deliver events with a larger id than this. */
  after: number;
  filter?: EventFilter;
  /** Called with each batch in id order (late commits may arrive after newer ids); awaited. */
  onEvents: (events: EventView[]) => void | Promise<void>;
  onError?: (err: unknown) => void;
  /** The feed was closed (process shutdown). */
  onClose?: () => void;
};

/**
 * Every event after a cursor, as it is recorded: the SSE stream's reader, and what the worker's
 * engine can use to wake on certificate changes. Returns the stop function.
 */
export function followEvents(db: Db, opts: FollowOptions): () => void {
  let cursor = opts.after;
  const gaps = new Map<number, number>();
  let reading = false;
  let again = false;
  let stopped = false;
  let recheck: NodeJS.Timeout | undefined;

  const readOnce = async (): Promise<boolean> => {
    const now = Date.now();
    for (const [id, since] of gaps) if (now - since > GAP_GRACE_MS) gaps.delete(id);
    const fresh: EventView[] = [];
    if (gaps.size) {
      const late = await listEvents(db, { ids: [...gaps.keys()], limit: MAX_EVENT_PAGE });
      for (const e of late) if (gaps.delete(e.id)) fresh.push(e);
    }
    const rows = await listEvents(db, { after: cursor, limit: MAX_EVENT_PAGE });
    for (const e of rows) {
      for (let missing = Math.max(cursor + 1, e.id - MAX_TRACKED_GAP); missing < e.id; missing++) gaps.set(missing, now);
      cursor = e.id;
      fresh.push(e);
    }
    if (stopped) return false;
    const matching = opts.filter ? fresh.filter((e) => eventMatches(e, opts.filter!)) : fresh;
    if (matching.length) await opts.onEvents(matching);
    return rows.length === MAX_EVENT_PAGE;
  };

  const read = async () => {
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      do {
        again = false;
        if (await readOnce()) again = true;
      } while (again && !stopped);
    } catch (err) {
      if (!stopped) opts.onError?.(err);
    } finally {
      reading = false;
    }
    if (gaps.size && !stopped && !recheck) {
      recheck = setTimeout(() => {
        recheck = undefined;
        void read();
      }, GAP_RECHECK_MS);
      recheck.unref();
    }
  };

  const unsubscribe = subscribeEvents(db, () => void read(), () => {
    stopped = true;
    clearTimeout(recheck);
    opts.onClose?.();
  });
  void read();
  return () => {
    stopped = true;
    clearTimeout(recheck);
    unsubscribe();
  };
}

/** Where a follower that starts "now" begins. */
export { latestEventId };
