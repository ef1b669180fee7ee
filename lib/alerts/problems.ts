import type { ExpressionBuilder } from "kysely";
import type { Db } from "../db";
import type { Database } from "../db/schema";
import type { EventView } from "../events";
import { newId, nowIso } from "../ids";
import { ALERT_EVENT_TYPES, FALLBACK_RESOLVE_MS, isAlertEventType, type AlertEventType } from "./constants";
import type { AlertPayload } from "./webhooks";

// Deduplication: every alertable event names a problem (renewal_failed:<certificate>, expiring:
// <certificate>:<fingerprint>:<days>, expired:<certificate>:<fingerprint>, fallback:<listener>,
// mismatch:<listener>:<hostname>). Only the event that opens a problem (new, or again after it was
// resolved) makes deliveries; events for an open problem bump its count. Every change is guarded
// by the event id (last_event_id < id), so two dispatchers applying the same event, or one applying
// an older event late, change nothing twice.

export type ProblemRef = { key: string; type: AlertEventType; certificateId: string | null; listenerId: string | null };

const detailOf = (event: EventView) => (event.detail && typeof event.detail === "object" ? (event.detail as Record<string, unknown>) : {});
const text = (v: unknown) => (typeof v === "string" && v ? v : undefined);

/** The problem an event reports, if it is an alert. */
export async function problemFor(db: Db, event: EventView): Promise<ProblemRef | undefined> {
  if (!isAlertEventType(event.type)) return undefined;
  const detail = detailOf(event);
  const cert = event.certificateId;
  const listener = event.listenerId;
  const ref = (key: string): ProblemRef => ({ key, type: event.type as AlertEventType, certificateId: cert, listenerId: listener });
  switch (event.type) {
    case "tls.renewal_failed":
      return cert ? ref(`renewal_failed:${cert}`) : undefined;
    case "tls.expiring": {
      const threshold = detail.thresholdDays;
      const fingerprint = text(detail.fingerprintSha256) ?? (cert ? await currentFingerprint(db, cert) : undefined);
      return cert && fingerprint && typeof threshold === "number" ? ref(`expiring:${cert}:${fingerprint}:${threshold}`) : undefined;
    }
    case "tls.expired": {
      const fingerprint = text(detail.fingerprintSha256) ?? (cert ? await currentFingerprint(db, cert) : undefined);
      return cert ? ref(`expired:${cert}:${fingerprint ?? "unknown"}`) : undefined;
    }
    case "tls.fallback_served":
      return listener ? ref(`fallback:${listener}`) : undefined;
    case "tls.served_mismatch": {
      const hostname = text(detail.hostname);
      return listener && hostname ? ref(`mismatch:${listener}:${hostname}`) : undefined;
    }
  }
  return undefined;
}

async function currentFingerprint(db: Db, certificateId: string): Promise<string | undefined> {
  const row = await db.selectFrom("certificates").select("fingerprint_sha256").where("id", "=", certificateId).executeTakeFirst();
  return row?.fingerprint_sha256 ?? undefined;
}

export type AppliedEvent = { opened?: string; bumped?: string; resolved: string[]; deliveries: number };

/** Applies one event to the problems table, and queues deliveries when it opens one. */
export async function applyAlertEvent(db: Db, event: EventView, now: Date = new Date()): Promise<AppliedEvent> {
  const outcome: AppliedEvent = { resolved: await resolveBy(db, event), deliveries: 0 };
  const problem = await problemFor(db, event);
  if (!problem) return outcome;
  const at = event.at;
  const newer = (eb: ExpressionBuilder<Database, "alert_problems">) => eb.or([eb("last_event_id", "is", null), eb("last_event_id", "<", event.id)]);
  await db.transaction().execute(async (trx) => {
    const inserted = await trx
      .insertInto("alert_problems")
      .values({ problem_key: problem.key, type: problem.type, certificate_id: problem.certificateId, listener_id: problem.listenerId, opened_at: at, last_seen_at: at, last_event_id: event.id, occurrences: 1, resolved_at: null })
      .onConflict((oc) => oc.column("problem_key").doNothing())
      .returning("problem_key")
      .executeTakeFirst();
    let opened = Boolean(inserted);
    if (!opened) {
      const reopened = await trx
        .updateTable("alert_problems")
        .set({ resolved_at: null, opened_at: at, last_seen_at: at, last_event_id: event.id, occurrences: 1 })
        .where("problem_key", "=", problem.key)
        .where("resolved_at", "is not", null)
        .where(newer)
        .executeTakeFirst();
      opened = Number(reopened.numUpdatedRows) === 1;
    }
    if (!opened) {
      const bumped = await trx
        .updateTable("alert_problems")
        .set((eb) => ({ occurrences: eb("occurrences", "+", 1), last_seen_at: at, last_event_id: event.id }))
        .where("problem_key", "=", problem.key)
        .where("resolved_at", "is", null)
        .where(newer)
        .executeTakeFirst();
      if (Number(bumped.numUpdatedRows) === 1) outcome.bumped = problem.key;
      return;
    }
    outcome.opened = problem.key;
    outcome.deliveries = await queueDeliveries(trx, event, problem, now);
  });
  return outcome;
}

async function queueDeliveries(db: Db, event: EventView, problem: ProblemRef, now: Date): Promise<number> {
  const webhooks = (await db.selectFrom("webhooks").select(["id", "event_types"]).where("enabled", "=", 1).execute()).filter((w) => {
    try {
      return (JSON.parse(w.event_types) as string[]).includes(problem.type);
    } catch {
      return false;
    }
  });
  if (!webhooks.length) return 0;
  const cert = problem.certificateId
    ? await db.selectFrom("certificates").select(["id", "name", "domains", "not_after"]).where("id", "=", problem.certificateId).executeTakeFirst()
    : undefined;
  const listener = problem.listenerId ? await db.selectFrom("listeners").select(["id", "name"]).where("id", "=", problem.listenerId).executeTakeFirst() : undefined;
  const at = nowIso(now);
  const rows = webhooks.map((w) => {
    const id = newId("dlv");
    const payload: AlertPayload = {
      id,
      type: event.type,
      problemKey: problem.key,
      occurredAt: event.at,
      severity: event.severity,
      message: event.message,
      ...(cert ? { certificate: { id: cert.id, name: cert.name, domains: JSON.parse(cert.domains) as string[], notAfter: cert.not_after } } : {}),
      ...(listener ? { listener: { id: listener.id, name: listener.name } } : {}),
      ...(event.detail !== null && event.detail !== undefined ? { detail: event.detail } : {}),
    };
    return {
      id,
      webhook_id: w.id,
      event_id: event.id,
      problem_key: problem.key,
      type: event.type,
      payload: JSON.stringify(payload),
      status: "pending" as const,
      attempts: 0,
      next_attempt_at: at,
      last_status_code: null,
      last_error: null,
      last_duration_ms: null,
      lease_owner: null,
      lease_expires_at: null,
      created_at: at,
      updated_at: at,
    };
  });
  await db.insertInto("webhook_deliveries").values(rows).execute();
  return rows.length;
}

/** Events that end problems: a certificate issued or renewed (or given a new version), or deleted. */
async function resolveBy(db: Db, event: EventView): Promise<string[]> {
  const detail = detailOf(event);
  let certificateId: string | null = null;
  let keep: (key: string) => boolean = () => false;
  if ((event.type === "tls.issued" || event.type === "tls.renewed" || event.type === "certificate.new_version") && event.certificateId) {
    certificateId = event.certificateId;
    // The new version's own expiry problems (if any) stay; the old versions' and the failure end.
    const fingerprint = text(detail.fingerprintSha256);
    keep = (key) => Boolean(fingerprint && key.includes(`:${fingerprint}`));
  } else if (event.type === "certificate.deleted") {
    certificateId = text(detail.id) ?? null;
  }
  if (!certificateId) return [];
  const open = await db.selectFrom("alert_problems").select("problem_key").where("certificate_id", "=", certificateId).where("resolved_at", "is", null).execute();
  const resolved: string[] = [];
  for (const { problem_key } of open) {
    if (keep(problem_key)) continue;
    const result = await db
      .updateTable("alert_problems")
      .set({ resolved_at: event.at, last_event_id: event.id })
      .where("problem_key", "=", problem_key)
      .where("resolved_at", "is", null)
      .where((eb) => eb.or([eb("last_event_id", "is", null), eb("last_event_id", "<", event.id)]))
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 1) resolved.push(problem_key);
  }
  return resolved;
}

/**
 * Problems that end without an event: a listener that served no fallback for 24 hours, a mismatch
 * whose hostname a later check found serving (or that is no longer mapped), and problems whose
 * certificate or listener was deleted.
 */
export async function resolveQuietProblems(db: Db, now: Date = new Date()): Promise<string[]> {
  const at = nowIso(now);
  const resolved: string[] = [];
  const close = async (key: string) => {
    const r = await db.updateTable("alert_problems").set({ resolved_at: at }).where("problem_key", "=", key).where("resolved_at", "is", null).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 1) resolved.push(key);
  };
  const open = await db.selectFrom("alert_problems").selectAll().where("resolved_at", "is", null).where("type", "in", [...ALERT_EVENT_TYPES]).execute();
  if (!open.length) return resolved;
  const certificates = new Set((await db.selectFrom("certificates").select("id").execute()).map((r) => r.id));
  const listeners = new Set((await db.selectFrom("listeners").select("id").execute()).map((r) => r.id));
  const quietSince = nowIso(new Date(now.getTime() - FALLBACK_RESOLVE_MS));
  for (const p of open) {
    if (p.certificate_id && !certificates.has(p.certificate_id)) await close(p.problem_key);
    else if (p.listener_id && !listeners.has(p.listener_id)) await close(p.problem_key);
    else if (p.type === "tls.fallback_served" && p.last_seen_at < quietSince) await close(p.problem_key);
    else if (p.type === "tls.served_mismatch" && p.listener_id) {
      const hostname = p.problem_key.slice(`mismatch:${p.listener_id}:`.length);
      const check = await db.selectFrom("listener_checks").select(["status", "checked_at"]).where("listener_id", "=", p.listener_id).where("hostname", "=", hostname).executeTakeFirst();
      if (!check || (check.status === "serving" && check.checked_at > p.last_seen_at)) await close(p.problem_key);
    }
  }
  return resolved;
}
