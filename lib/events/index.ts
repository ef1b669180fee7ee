import type { Db } from "../db";
import type { EventSeverity } from "../db/schema";
import { nowIso } from "../ids";

export type NewEvent = {
  type: string;
  severity?: EventSeverity;
  certificateId?: string | null;
  listenerId?: string | null;
  message: string;
  detail?: Record<string, unknown>;
};

export async function recordEvent(db: Db, event: NewEvent, now: Date = new Date()) {
  await db
    .insertInto("events")
    .values({
      at: nowIso(now),
      type: event.type,
      severity: event.severity ?? "info",
      certificate_id: event.certificateId ?? null,
      listener_id: event.listenerId ?? null,
      message: event.message,
      detail: event.detail ? JSON.stringify(event.detail) : null,
    })
    .execute();
}

export type EventView = {
  id: number;
  at: string;
  type: string;
  severity: EventSeverity;
  certificateId: string | null;
  listenerId: string | null;
  message: string;
  detail: unknown;
};

export async function listEvents(
  db: Db,
  opts: { after?: number; certificateId?: string; limit?: number; newestFirst?: boolean } = {},
): Promise<EventView[]> {
  let q = db.selectFrom("events").selectAll();
  if (opts.after !== undefined) q = q.where("id", ">", opts.after);
  if (opts.certificateId) q = q.where("certificate_id", "=", opts.certificateId);
  const rows = await q
    .orderBy("id", opts.newestFirst ? "desc" : "asc")
    .limit(Math.min(opts.limit ?? 100, 500))
    .execute();
  return rows.map((r) => ({
    id: Number(r.id),
    at: r.at,
    type: r.type,
    severity: r.severity,
    certificateId: r.certificate_id,
    listenerId: r.listener_id,
    message: r.message,
    detail: r.detail ? JSON.parse(r.detail) : null,
  }));
}
