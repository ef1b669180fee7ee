import { sql } from "kysely";
import type { Db } from "../db";
import { databaseKind } from "../db/connection";
import type { CertificateStatus, EventSeverity } from "../db/schema";
import { nowIso } from "../ids";

/** The PostgreSQL channel that carries the id of every new event (see feed.ts). */
export const EVENTS_CHANNEL = "portcullis_events";

export const EVENT_SEVERITIES: readonly EventSeverity[] = ["info", "warning", "error"];

export type NewEvent = {
  type: string;
  severity?: EventSeverity;
  certificateId?: string | null;
  listenerId?: string | null;
  message: string;
  /** The certificate's new status when this event is a status change (stored as detail.status). */
  status?: CertificateStatus;
  detail?: Record<string, unknown>;
};

/**
 * Writes one event and returns its id. On PostgreSQL the same statement notifies the change feed,
 * so a listener hears of the event exactly when it commits (with the caller's transaction, if any).
 */
export async function recordEvent(db: Db, event: NewEvent, now: Date = new Date()): Promise<number> {
  const detail = event.status ? { ...event.detail, status: event.status } : event.detail;
  const values = {
    at: nowIso(now),
    type: event.type,
    severity: event.severity ?? "info",
    certificate_id: event.certificateId ?? null,
    listener_id: event.listenerId ?? null,
    message: event.message,
    detail: detail ? JSON.stringify(detail) : null,
  };
  if (databaseKind(db) === "postgres") {
    const row = await db
      .with("inserted", (qb) => qb.insertInto("events").values(values).returning("id"))
      .selectFrom("inserted")
      .select((eb) => [eb.ref("inserted.id").as("id"), sql<string>`pg_notify(${EVENTS_CHANNEL}, ${eb.ref("inserted.id")}::text)`.as("notified")])
      .executeTakeFirstOrThrow();
    return Number(row.id);
  }
  const row = await db.insertInto("events").values(values).returning("id").executeTakeFirstOrThrow();
  return Number(row.id);
}

export type EventView = {
  id: number;
  at: string;
  type: string;
  severity: EventSeverity;
  certificateId: string | null;
  /** The certificate's current name; null when it has none or was deleted since. */
  certificateName: string | null;
  listenerId: string | null;
  listenerName: string | null;
  message: string;
  detail: unknown;
};

export type EventQuery = {
  /** Only events with a larger id (oldest first unless newestFirst). */
  after?: number;
  /** Only events with a smaller id: the next page of a newest-first list. */
  before?: number;
  /** Only these events (a reader looking for late commits). */
  ids?: number[];
  certificateId?: string;
  listenerId?: string;
  type?: string;
  severity?: EventSeverity;
  limit?: number;
  newestFirst?: boolean;
};

export const MAX_EVENT_PAGE = 500;

export async function listEvents(db: Db, opts: EventQuery = {}): Promise<EventView[]> {
  let q = db
    .selectFrom("events")
    .leftJoin("certificates", "certificates.id", "events.certificate_id")
    .leftJoin("listeners", "listeners.id", "events.listener_id")
    .selectAll("events")
    .select(["certificates.name as certificate_name", "listeners.name as listener_name"]);
  if (opts.after !== undefined) q = q.where("events.id", ">", opts.after);
  if (opts.before !== undefined) q = q.where("events.id", "<", opts.before);
  if (opts.ids) q = q.where("events.id", "in", opts.ids.length ? opts.ids : [-1]);
  if (opts.certificateId) q = q.where("events.certificate_id", "=", opts.certificateId);
  if (opts.listenerId) q = q.where("events.listener_id", "=", opts.listenerId);
  if (opts.type) q = q.where("events.type", "=", opts.type);
  if (opts.severity) q = q.where("events.severity", "=", opts.severity);
  const rows = await q
    .orderBy("events.id", opts.newestFirst ? "desc" : "asc")
    .limit(Math.min(opts.limit ?? 100, MAX_EVENT_PAGE + 1))
    .execute();
  return rows.map((r) => ({
    id: Number(r.id),
    at: r.at,
    type: r.type,
    severity: r.severity,
    certificateId: r.certificate_id,
    certificateName: r.certificate_name,
    listenerId: r.listener_id,
    listenerName: r.listener_name,
    message: r.message,
    detail: r.detail ? JSON.parse(r.detail) : null,
  }));
}

/** The id of the newest event, 0 when there is none: where a stream that starts "now" begins. */
export async function latestEventId(db: Db): Promise<number> {
  const row = await db.selectFrom("events").select((eb) => eb.fn.max("id").as("id")).executeTakeFirst();
  return Number(row?.id ?? 0);
}

/** Every event type that has been recorded, for the events page's filter. */
export async function listEventTypes(db: Db): Promise<string[]> {
  const rows = await db.selectFrom("events").select("type").distinct().orderBy("type").execute();
  return rows.map((r) => r.type);
}
