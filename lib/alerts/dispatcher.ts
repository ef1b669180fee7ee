import crypto from "node:crypto";
import type { Logger } from "pino";
import type { Keyring } from "../crypto/seal";
import type { Db } from "../db";
import { latestEventId, listEvents } from "../events";
import { WakeableLoop } from "../events/wake-loop";
import { nowIso } from "../ids";
import { nextDeliveryDue, runDueDeliveries } from "./deliver";
import { scanExpiry } from "./expiry";
import { applyAlertEvent, resolveQuietProblems } from "./problems";

// The alert dispatcher (worker, engine role). It follows the events table from a cursor kept in
// event_cursors (woken by the change feed, and polling), turns alertable events into problems and
// deliveries (problems.ts), sends due deliveries with a lease (deliver.ts), and every few minutes
// resolves quiet problems and looks for certificates nearing expiry (expiry.ts). Any number of
// workers may run one: every step is guarded in the database.

export const ALERTS_CURSOR = "alerts";
const BATCH = 500;
/** PostgreSQL commits ids out of order: a hole in the ids is waited for this long before it is skipped. */
const GAP_GRACE_MS = 5_000;
const MIN_RETRY_LOOK_MS = 1_000;

export type DispatcherOptions = {
  db: Db;
  keyring: Keyring;
  log: Logger;
  workerId?: string;
  now?: () => Date;
  /** The longest sleep between two looks (the change feed usually wakes it sooner). */
  pollMs?: number;
  /** How often quiet problems are resolved and certificates checked for expiry (and at start). */
  sweepMs?: number;
  leaseMs?: number;
  timeoutMs?: number;
};

export class AlertDispatcher {
  readonly workerId: string;
  private readonly loop: WakeableLoop;
  private lastSweep = 0;
  private readonly gaps = new Map<number, number>();

  constructor(private readonly opts: DispatcherOptions) {
    this.workerId = opts.workerId ?? `alerts-${process.pid}-${crypto.randomBytes(3).toString("hex")}`;
    this.loop = new WakeableLoop({
      db: opts.db,
      pass: () => this.tick(),
      // The next retry that falls due, or the poll; at least a second, so that a delivery another worker holds is not spun on.
      nextDelayMs: async () => {
        const poll = opts.pollMs ?? 5_000;
        const due = await nextDeliveryDue(opts.db).catch(() => undefined);
        const untilDue = due ? Math.max(0, due.getTime() - this.now.getTime()) : poll;
        return Math.max(MIN_RETRY_LOOK_MS, Math.min(poll, untilDue + 10));
      },
      onError: (err) => opts.log.error({ err }, "alerts: a dispatcher pass failed; trying again"),
    });
  }

  private get now() {
    return this.opts.now?.() ?? new Date();
  }

  start() {
    this.loop.start();
  }

  async stop() {
    await this.loop.stop();
  }

  /** One pass: new events, due deliveries, and (every sweepMs) quiet problems and expiry notices. */
  async tick() {
    if (Date.now() - this.lastSweep >= (this.opts.sweepMs ?? 5 * 60_000)) {
      this.lastSweep = Date.now();
      await this.sweep();
    }
    await this.followEvents();
    await runDueDeliveries(this.opts.db, this.opts.keyring, { workerId: this.workerId, now: () => this.now, leaseMs: this.opts.leaseMs, timeoutMs: this.opts.timeoutMs });
  }

  /** Everything due now, until nothing is left (tests, CLI). */
  async drain() {
    await this.sweep();
    await this.followEvents();
    while ((await runDueDeliveries(this.opts.db, this.opts.keyring, { workerId: this.workerId, now: () => this.now, leaseMs: this.opts.leaseMs, timeoutMs: this.opts.timeoutMs })) > 0) {
      await this.followEvents();
    }
  }

  async sweep() {
    const notices = await scanExpiry(this.opts.db, this.now);
    if (notices.length) this.opts.log.info({ notices: notices.map((n) => `${n.name}: ${n.thresholdDays} days`) }, "alerts: expiry notices");
    const resolved = await resolveQuietProblems(this.opts.db, this.now);
    if (resolved.length) this.opts.log.info({ resolved }, "alerts: problems resolved");
  }

  /** The cursor starts at the newest event when alerts first run: old history raises no alerts. */
  private async cursor(): Promise<number> {
    const { db } = this.opts;
    const row = await db.selectFrom("event_cursors").select("last_event_id").where("name", "=", ALERTS_CURSOR).executeTakeFirst();
    if (row) return Number(row.last_event_id);
    const start = await latestEventId(db);
    await db
      .insertInto("event_cursors")
      .values({ name: ALERTS_CURSOR, last_event_id: start, updated_at: nowIso() })
      .onConflict((oc) => oc.column("name").doNothing())
      .execute();
    const again = await db.selectFrom("event_cursors").select("last_event_id").where("name", "=", ALERTS_CURSOR).executeTakeFirstOrThrow();
    return Number(again.last_event_id);
  }

  /** Applies every event after the cursor in id order, then moves the cursor (only forwards). */
  async followEvents(): Promise<number> {
    const { db } = this.opts;
    let applied = 0;
    for (;;) {
      const cursor = await this.cursor();
      const events = await listEvents(db, { after: cursor, limit: BATCH });
      let done = cursor;
      for (const event of events) {
        if (event.id !== done + 1 && !this.gapExpired(done + 1)) break;
        const outcome = await applyAlertEvent(db, event, this.now);
        if (outcome.opened) this.opts.log.info({ problem: outcome.opened, deliveries: outcome.deliveries }, "alerts: problem opened");
        done = event.id;
        applied++;
      }
      if (done > cursor) {
        await db.updateTable("event_cursors").set({ last_event_id: done, updated_at: nowIso() }).where("name", "=", ALERTS_CURSOR).where("last_event_id", "<", done).execute();
      }
      if (events.length < BATCH || done === cursor || this.loop.stopped) return applied;
    }
  }

  private gapExpired(missingId: number): boolean {
    const now = Date.now();
    for (const [id, since] of this.gaps) if (now - since > 10 * GAP_GRACE_MS) this.gaps.delete(id);
    const since = this.gaps.get(missingId);
    if (since === undefined) {
      this.gaps.set(missingId, now);
      return false;
    }
    return now - since >= GAP_GRACE_MS;
  }
}
